"""The course secret and the per-submission seed for hidden inputs.

The seed is HMAC-SHA256(secret, sha256 of the submission): students cannot predict it, a regrade of the
same file gets the same inputs. The secret comes from AUTOGRADER_SECRET or an untracked file (created on
first use, mode 0600; git-ignored), never from the repository.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import time

from autograder import layout


EMPTY_WAIT_S = 5.0  # how long an empty secret file may stay empty (its creator writing its line)


def course_secret() -> bytes:
    env = os.environ.get("AUTOGRADER_SECRET")
    if env:
        return env.encode("utf-8")
    path = layout.SECRET_FILE
    if not path.exists():
        _create(path)
    deadline = time.monotonic() + EMPTY_WAIT_S
    while True:  # a file made by O_EXCL (below) may be read in the instant before its line is written
        text = path.read_text().strip()
        if text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not text:
        raise RuntimeError(f"the course secret file {path} is empty: delete it (only before any grading) or "
                           "restore it")
    return text.encode("utf-8")


def _create(path) -> None:
    """Create the secret file atomically, once: parallel workers (and workers in other pid namespaces
    sharing the checkout) must all end up with the same secret. The line goes into a private temporary
    file that is hard-linked into place; where the file system has no hard links, an exclusive create."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = secrets.token_hex(32) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(line)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(fd, "w") as f:
                f.write(line)
    finally:
        os.unlink(tmp)


def hidden_seed(submission_sha256: str) -> int:
    digest = hmac.new(course_secret(), submission_sha256.encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1
