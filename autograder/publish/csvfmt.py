"""The gradebook CSV that K-LMS imports (Grades > Import), written the way Canvas's importer reads it.

Canvas's ``GradebookImporter`` reads columns by position: ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section`` (the last student-information column), then one column per assignment
headed ``Title (assignment id)`` and matched by ``/\\A(.*)\\s\\((\\d+)\\)\\z/``. A row whose first cell
holds ``Points Possible`` follows the header. Students are matched by Canvas user id first. A blank or
``-`` cell sets no score, ``EX`` excuses. We write UTF-8 with a BOM (as K-LMS exports it, so that Excel
shows Japanese names) and numbers with a decimal point (``70.0``).
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
ASSIGNMENT_HEADER = re.compile(r"\A(.*)\s\((\d+)\)\Z", re.DOTALL)   # Canvas's /\A(.*)\s\((\d+)\)\z/
POINTS_POSSIBLE = "Points Possible"
EXCUSED = "EX"
ENCODING = "utf-8-sig"


@dataclass(frozen=True)
class Row:
    name: str
    user_id: str
    sis_user_id: str
    sis_login_id: str
    section: str
    value: str            # format_score(...), EXCUSED or "" (no score)


def format_score(x: float | None) -> str:
    """``70.0``, ``13.25``; at most two decimals (what K-LMS shows); "" for None."""
    if x is None or not math.isfinite(x):
        return ""
    text = f"{round(float(x), 2):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def assignment_header(title: str, assignment_id: str | int) -> str:
    header = f"{title} ({assignment_id})"
    m = ASSIGNMENT_HEADER.match(header)
    if not re.fullmatch(r"\d+", str(assignment_id)) or not m or m.group(2) != str(assignment_id):
        raise ValueError(f"assignment id must be Canvas's number, got {assignment_id!r}")
    return header


def write_gradebook_csv(path: str | Path, rows: list[Row], *, title: str, assignment_id: str | int,
                        points_possible: float) -> None:
    header = assignment_header(title, assignment_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=ENCODING, newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([*STUDENT_COLUMNS, header])
        w.writerow([POINTS_POSSIBLE, "", "", "", "", format_score(points_possible)])
        for r in rows:
            w.writerow([r.name, r.user_id, r.sis_user_id, r.sis_login_id, r.section, r.value])


def write_table_csv(path: str | Path, header: list[str], rows: list[list[str]]) -> None:
    """A plain UTF-8 (BOM) CSV for people and spreadsheets (the per-question table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=ENCODING, newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
