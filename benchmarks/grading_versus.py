"""Grading time of this working tree against an earlier revision, side by side in one run.

    .venv/bin/python benchmarks/grading_versus.py --base REV [--repeat N] [--profile small|full] [--full]

Checks REV out into a temporary git worktree, then grades the same notebook with
``python -m autograder grade --json`` in each tree, alternating (base, here, base, here, ...) so that a
change of load on the machine hits both alike, and prints the median seconds of each and their ratio.
The notebook is the solution of *this* tree (without its MLP cells unless --full: the fixed cost per
submission, which is what a batch pays 300 times). Both trees use this venv and this MNIST folder.

The figure issue 9 asks for: "the grading-overhead and batch benchmarks do not get slower by more than 5 %".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import notebook_variants as nv  # noqa: E402
from autograder import layout  # noqa: E402


def grade_seconds(tree: Path, notebook: Path, env: dict) -> tuple[float, float]:
    """Wall seconds of one ``grade --json`` in ``tree``, and the total it gave."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--json"], cwd=tree,
                         env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    if out.returncode not in (0, 1):
        raise SystemExit(f"grading failed in {tree}:\n{out.stderr[-2000:]}")
    return seconds, json.loads(out.stdout)["total"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare against")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="small", choices=("small", "full"))
    parser.add_argument("--full", action="store_true", help="grade the whole solution (MNIST training included)")
    args = parser.parse_args()

    env = dict(os.environ, AUTOGRADER_MNIST_PROFILE=args.profile, AUTOGRADER_DATA=str(layout.DATA_DIR),
               AUTOGRADER_SECRET=os.environ.get("AUTOGRADER_SECRET", "benchmark-secret"))
    with tempfile.TemporaryDirectory(prefix="grading-versus-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.base],
                       check=True)
        try:
            notebook = Path(tmp) / "submission.ipynb"
            solution = nv.solution()
            notebook.write_bytes(nv.dumps(solution if args.full else nv.without_mlp(solution)))
            times: dict[str, list[float]] = {"base": [], "here": []}
            totals = {}
            grade_seconds(ROOT, notebook, env)  # warm the page cache and the MNIST profile folders
            grade_seconds(base, notebook, env)
            for _ in range(args.repeat):
                for name, tree in (("base", base), ("here", ROOT)):
                    seconds, totals[name] = grade_seconds(tree, notebook, env)
                    times[name].append(seconds)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    base_s, here_s = statistics.median(times["base"]), statistics.median(times["here"])
    print(f"notebook: the solution{'' if args.full else ' without its MLP cells'}, profile {args.profile}, "
          f"{args.repeat} alternating runs each")
    print(f"base {args.base}: median {base_s:.2f} s (total {totals['base']}), runs {[round(t, 2) for t in times['base']]}")
    print(f"this tree:       median {here_s:.2f} s (total {totals['here']}), runs {[round(t, 2) for t in times['here']]}")
    print(f"this tree ÷ base: {here_s / base_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
