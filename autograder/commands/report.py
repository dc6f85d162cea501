"""``python -m autograder report --db DB --out report.html``: the class report (``autograder.publish.report``)."""
from __future__ import annotations

import sys

from autograder import assignment
from autograder.publish import report
from autograder.record import gradebook


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook (SQLite) written by batch")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--submissions", help="zip or folder holding the notebooks, for similarity flags "
                        "(default: the input of the latest batch that still exists)")
    parser.add_argument("--release", help=f"release notebook whose template code is ignored (default: "
                        f"{_default_release()})")


def _default_release() -> str:
    current = assignment.current()
    return str(current.release_notebook.relative_to(current.course_root))


def run(args) -> int:
    try:
        built = report.build(args.db, args.submissions, args.release)
    except gradebook.GradebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = report.write(built, args.out)
    c = built.counts()
    print(f"wrote {out}: {c['graded']} graded, {c['missing']} missing, {len(built.similarity_flags)} similarity flag(s)")
    return 0
