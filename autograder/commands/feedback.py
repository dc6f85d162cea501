"""``python -m autograder feedback --db DB --out DIR``: per-student feedback files (``autograder.publish.feedback``)."""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.publish import feedback
from autograder.record import gradebook


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook (SQLite) written by batch")
    parser.add_argument("--out", required=True, help="folder for <id>.md and <id>.html per graded submission")


def run(args) -> int:
    try:
        conn = gradebook.connect(args.db, create=False)
    except gradebook.GradebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        grades = gradebook.grades(conn)
    finally:
        conn.close()
    written = feedback.write_files(grades, args.out)
    print(f"wrote feedback for {written} graded submission(s) to {Path(args.out)}")
    return 0
