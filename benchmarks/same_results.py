"""Grade every notebook of a zip (or folder) with this tree and with another commit, and diff the results.

    python benchmarks/same_results.py examples/submissions.zip --base REV

Restructuring must not change a grade: the two results of each notebook must be equal apart from what
records the run itself (grader_version, durations, timings). Exit 1 and print the differences otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
VOLATILE = {"grader_version", "duration_s", "notebook_seconds", "seconds"}


def scrub(value):
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def differences(old, new, path: str = "") -> list[tuple[str, object, object]]:
    """(key path, old value, new value) of every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


def grade(tree: Path, notebook: Path) -> dict:
    code = ("import json, sys; from pathlib import Path; from autograder.grade import grade_notebook; "
            "print(json.dumps(grade_notebook(Path(sys.argv[1]))))")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([str(PYTHON), "-c", code, str(notebook)], cwd=tree, env=env, capture_output=True,
                         text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--allow", action="append", default=[], metavar="KEY.PATH",
                        help="a key path that may differ (a documentation string that moved, say); listed, not "
                             "counted as a difference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            if Path(args.input).is_dir():
                notebooks = sorted(Path(args.input).glob("*.ipynb"))
            else:
                with zipfile.ZipFile(args.input) as z:
                    z.extractall(tmp / "in")
                notebooks = sorted((tmp / "in").rglob("*.ipynb"))
            jobs = [(tree, nb) for nb in notebooks for tree in (base, ROOT)]
            with ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(lambda job: scrub(grade(*job)), jobs))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    differing = 0
    for i, nb in enumerate(notebooks):
        old, new = results[2 * i], results[2 * i + 1]
        found = differences(old, new)
        unexpected = [d for d in found if d[0] not in args.allow]
        differing += bool(unexpected)
        allowed = f" (allowed: {', '.join(d[0] for d in found if d[0] in args.allow)})" if len(found) > len(unexpected) else ""
        print(f"{'DIFFERENT' if unexpected else 'same':9s} {old['total']:>5} {new['total']:>5}  {nb.name}{allowed}")
        for path, a, b in unexpected:
            print(f"    {path}: {json.dumps(a, ensure_ascii=False)[:300]}")
            print(f"    {' ' * len(path)}  {json.dumps(b, ensure_ascii=False)[:300]}")
    print(f"{len(notebooks) - differing} of {len(notebooks)} notebooks graded identically (apart from "
          f"{', '.join(sorted(VOLATILE))}{''.join(', ' + a for a in args.allow)})")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
