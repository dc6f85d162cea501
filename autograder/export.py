"""``python -m autograder export``: the K-LMS gradebook CSV (imported as is) and a per-question table.

    export --db DB --canvas-csv OUT.csv --assignment-id ID [--title TITLE] [--questions-csv OUT2.csv]

The K-LMS file has every roster student (blank when nothing was submitted or nothing could be graded,
``EX`` when excused) and every submitter with a Canvas user id; see ``autograder.canvas.csvfmt``.
Anonymous submissions not yet matched to a person are left out, with a warning. The output depends on
the gradebook only (no dates), so the same gradebook always gives the same bytes.
"""
from __future__ import annotations

import sys

import grader_config as config

from . import gradebook
from .canvas import csvfmt


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook written by batch")
    parser.add_argument("--canvas-csv", required=True, help="the file to import into K-LMS (Grades > Import)")
    parser.add_argument("--assignment-id", required=True,
                        help="the K-LMS assignment id (the number in the assignment's URL)")
    parser.add_argument("--title", default=config.ASSIGNMENT, help="the assignment's title in K-LMS")
    parser.add_argument("--questions-csv", help="also write one row per student with every question's score")


def klms_value(g: gradebook.Grade) -> str:
    if g.excused:
        return csvfmt.EXCUSED
    return csvfmt.format_score(g.final_score)


def _override_text(g: gradebook.Grade) -> str:
    parts = []
    for o in g.overrides:
        what = "excused" if o["excused"] else f"{o['question'] or 'total'}={csvfmt.format_score(o['score'])}"
        parts.append(f"{what} by {o['by']} at {o['at']}: {o['reason']}")
    return " | ".join(parts)


def question_rows(grades: list[gradebook.Grade]) -> tuple[list[str], list[list[str]]]:
    header = [*csvfmt.STUDENT_COLUMNS, *config.QUESTIONS, "total", "final", "status", "late", "flags",
              "overrides", "file", "message"]
    rows = []
    for g in grades:
        rows.append([g.name or g.student_key, g.user_id or "", g.sis_user_id, g.sis_login_id, g.section,
                     *(csvfmt.format_score(g.questions.get(q)) for q in config.QUESTIONS),
                     csvfmt.format_score(g.raw_total), klms_value(g), g.status, "late" if g.late else "",
                     "; ".join(g.flags), _override_text(g), g.filename or "",
                     (g.message or "").replace("\r", " ").replace("\n", " ")[:300] if g.status != "ok" else ""])
    return header, rows


def warnings_for(grades: list[gradebook.Grade]) -> list[str]:
    out = []
    unmatched = [g.student_key for g in grades if g.anonymous and "anonymous_unmatched" in g.flags]
    if unmatched:
        out.append(f"{len(unmatched)} anonymous submissions are not exported until matched to a student "
                   f"(re-download the zip after K-LMS shows names, and batch it): {', '.join(unmatched)}")
    other = [g.student_key for g in grades if g.anonymous and g.student_key.startswith("file:")]
    if other:
        out.append(f"{len(other)} files not named the K-LMS way are not exported: {', '.join(other)}")
    stray = [g.user_id for g in grades if g.user_id and not g.in_roster and "not_in_roster" in g.flags]
    if stray:
        out.append(f"{len(stray)} submitters are not in the roster; exported by Canvas user id: {', '.join(stray)}")
    blank = [f"{g.student_key} ({g.status})" for g in grades
             if g.exportable and g.final_score is None and not g.excused and g.status != "missing"]
    if blank:
        out.append(f"{len(blank)} submissions have no score yet and are exported blank: {', '.join(blank)}")
    late = [g for g in grades if g.late and g.exportable]
    if config.LATE_POLICY != "none":
        out.append(f"LATE_POLICY={config.LATE_POLICY!r} is applied here ({len(late)} late submissions): if the "
                   "assignment also has a late policy in K-LMS, K-LMS deducts a second time on import. "
                   "Keep only one of the two.")
    overridden = [g.student_key for g in grades if g.overrides]
    if overridden:
        out.append(f"{len(overridden)} students have a TA override in force: {', '.join(overridden)}")
    return out


def run(args) -> int:
    try:
        conn = gradebook.connect(args.db, create=False)
        grades = gradebook.grades(conn)
        rows = [csvfmt.Row(g.name or g.student_key, g.user_id, g.sis_user_id, g.sis_login_id, g.section,
                           klms_value(g)) for g in grades if g.exportable]
        csvfmt.write_gradebook_csv(args.canvas_csv, rows, title=args.title, assignment_id=args.assignment_id,
                                   points_possible=gradebook.max_total())
        if args.questions_csv:
            header, qrows = question_rows(grades)
            csvfmt.write_table_csv(args.questions_csv, header, qrows)
    except (gradebook.GradebookError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for w in warnings_for(grades):
        print(f"warning: {w}", file=sys.stderr)
    scored = sum(1 for r in rows if r.value not in ("", csvfmt.EXCUSED))
    print(f"wrote {args.canvas_csv}: {len(rows)} students, {scored} scores"
          + (f"; {args.questions_csv}" if args.questions_csv else ""))
    return 0
