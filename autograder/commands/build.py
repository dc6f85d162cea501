"""``python -m autograder build``: the student release and the solutions, from the master notebook
(``autograder.build.release``)."""
from __future__ import annotations

import sys

from autograder import assignment
from autograder.build.release import BuildError, build


def add_arguments(parser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a generated file is out of date")


def run(args) -> int:
    try:
        changed = build(check=args.check)
    except (BuildError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = assignment.current().course_root
    shown = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in changed]
    if args.check:
        for path in shown:
            print(f"out of date: {path}")
        print("generated files are up to date" if not changed else "run: python -m autograder build")
        return 1 if changed else 0
    for path in shown:
        print(f"wrote {path}")
    print(f"{len(changed)} file(s) changed" if changed else "nothing to do: generated files are up to date")
    return 0
