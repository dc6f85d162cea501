#!/usr/bin/env bash
# Headless Chromium (tests/test_report.py screenshots the class report) and a Japanese font (the report's
# plots and pages): Debian's chromium and fonts-noto-cjk. Idempotent; needs root (CI runs as root).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || need+=(fonts-noto-cjk)   # no grep -q: SIGPIPE + pipefail
if [ ${#need[@]} -eq 0 ]; then
  echo "chromium and fonts-noto-cjk already installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
chromium --version
if fc-list | grep -i "Noto Sans CJK" >/dev/null; then echo "fonts-noto-cjk installed"; fi
