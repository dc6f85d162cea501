"""``python -m autograder export``: the K-LMS gradebook CSV (imported as is) and a per-question table.

    export --db DB --canvas-csv OUT.csv [--assignment-id ID] [--title TITLE] [--missing leave|zero]
           [--questions-csv OUT2.csv]

The K-LMS file never erases a grade already in K-LMS: Canvas's importer treats a blank cell as a change
when the student already has a grade and clears it, while a student absent from the file is not touched.
So a row is written only for a student with a score (or ``EX`` when excused); students without one
(missing, ambiguous, no_notebook, rejected, pending, sandbox_error) are left out and listed in the summary.
``--missing zero`` writes 0 for roster students who submitted nothing. Anonymous submissions not yet
matched to a person are left out, with a warning. ``--assignment-id`` and ``--title`` default to the
roster's one "Title (id)" column (when the roster given to batch had exactly one). The K-LMS file never
holds a TA's override reason; the per-question CSV (for staff) does. The output depends on the gradebook
only (no dates), so the same gradebook always gives the same bytes.
"""
from __future__ import annotations

from autograder.config import grader_config as config

from autograder.record import gradebook
from autograder.publish import csvfmt


def klms_value(g: gradebook.Grade, missing: str = "leave") -> str:
    """The K-LMS cell: a score, EX, "0" for a student who submitted nothing under ``--missing zero``, or ""
    (no score: such a row is not written)."""
    if g.excused:
        return csvfmt.EXCUSED
    if g.final_score is None and g.status == "missing" and missing == "zero":
        return csvfmt.format_score(0.0)
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
        out.append(f"{len(stray)} submitters are not in the roster; K-LMS matches them by Canvas user id: {', '.join(stray)}")
    blank = [f"{g.student_key} ({g.status})" for g in grades
             if g.exportable and g.final_score is None and not g.excused and g.status != "missing"]
    if blank:
        out.append(f"{len(blank)} submissions have no score and are left out of the K-LMS file (K-LMS keeps "
                   f"what it has for them): {', '.join(blank)}")
    invalid = [g for g in grades
               if g.exportable and g.status == "invalid" and g.final_score is not None and not g.excused]
    if invalid:
        values = ", ".join(sorted({csvfmt.format_score(g.final_score) for g in invalid}))
        out.append(f"{len(invalid)} students get {values} because their notebook could not be read (invalid); "
                   f"check them before importing: {', '.join(g.student_key for g in invalid)}")
    late = [g for g in grades if g.late and g.exportable]
    if config.LATE_POLICY != "none":
        out.append(f"LATE_POLICY={config.LATE_POLICY!r} is applied here ({len(late)} late submissions): if the "
                   "assignment also has a late policy in K-LMS, K-LMS deducts a second time on import. "
                   "Keep only one of the two.")
    overridden = [g.student_key for g in grades if g.overrides]
    if overridden:
        out.append(f"{len(overridden)} students have a TA override in force: {', '.join(overridden)}")
    return out


def klms_rows(grades: list[gradebook.Grade], missing: str = "leave") -> tuple[list[csvfmt.Row], list[gradebook.Grade]]:
    """The K-LMS file's rows (students with a Canvas user id and a value), and the students left out of it
    because they have no score."""
    rows, left_out = [], []
    for g in grades:
        if not g.exportable:
            continue
        value = klms_value(g, missing)
        if value == "":
            left_out.append(g)
            continue
        rows.append(csvfmt.Row(g.name or g.student_key, g.user_id, g.sis_user_id, g.sis_login_id, g.section, value))
    return rows, left_out
