"""``python -m autograder export``: the K-LMS gradebook CSV and the per-question CSV
(``autograder.publish.klms_csv``, whose docstring says what goes into the file and what never does)."""
from __future__ import annotations

import sys

from autograder.config import grader_config as config
from autograder.publish import csvfmt, klms_csv
from autograder.record import gradebook


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook written by batch")
    parser.add_argument("--canvas-csv", required=True, help="the file to import into K-LMS (Grades > Import)")
    parser.add_argument("--assignment-id", "--assignment", dest="assignment_id",
                        help="the K-LMS assignment id, the number in the assignment's URL (default: from the "
                        "roster's 'Title (id)' column)")
    parser.add_argument("--title", help=f"the assignment's title in K-LMS (default: from the roster, else "
                        f"{config.ASSIGNMENT!r})")
    parser.add_argument("--missing", choices=("leave", "zero"), default="leave",
                        help="students who submitted nothing: leave them out of the file, so K-LMS keeps what "
                        "it has (default), or write 0")
    parser.add_argument("--questions-csv", help="also write one row per student with every question's score")


def run(args) -> int:
    from autograder.__main__ import usage_error

    try:
        conn = gradebook.connect(args.db, create=False)
        assignment_id = args.assignment_id or gradebook.get_meta(conn, "klms_assignment_id")
        title = args.title or gradebook.get_meta(conn, "klms_title") or config.ASSIGNMENT
        if not assignment_id:
            usage_error(args, "give --assignment-id (the roster given to batch had no single 'Title (id)' column)")
        grades = gradebook.grades(conn)
        rows, left_out = klms_csv.klms_rows(grades, args.missing)
        csvfmt.write_gradebook_csv(args.canvas_csv, rows, title=title, assignment_id=assignment_id,
                                   points_possible=gradebook.max_total())
        if args.questions_csv:
            header, qrows = klms_csv.question_rows(grades)
            csvfmt.write_table_csv(args.questions_csv, header, qrows)
    except (gradebook.GradebookError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for w in klms_csv.warnings_for(grades):
        print(f"warning: {w}", file=sys.stderr)
    scored = sum(1 for r in rows if r.value not in ("", csvfmt.EXCUSED))
    excused = sum(1 for r in rows if r.value == csvfmt.EXCUSED)
    missing = [g for g in grades if g.exportable and g.status == "missing" and not g.excused and g.final_score is None]
    print(f"wrote {args.canvas_csv} for '{title} ({assignment_id})': {len(rows)} students, {scored} scores, "
          f"{excused} excused" + (f"; {args.questions_csv}" if args.questions_csv else ""))
    if args.missing == "zero":
        print(f"policy --missing zero: {len(missing)} students who submitted nothing get 0")
    else:
        print(f"policy --missing leave: {len(left_out)} students without a score are not in the file, so K-LMS "
              f"keeps what it has for them ({len(missing)} submitted nothing; --missing zero writes 0 for those)")
    return 0
