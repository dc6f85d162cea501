"""The roster: the gradebook CSV a TA exports from K-LMS (Grades > Export).

Row 1 is the header: ``Student``, ``ID``, ``SIS User ID`` (may be absent), ``SIS Login ID``, optional
``Integration ID`` / ``Root Account``, ``Section``, then one column per assignment. A ``Points Possible``
row (its first cell holds those words, Canvas pads it with spaces) and Canvas's other non-student rows
(first cells blank, e.g. "Manual Posting") may follow. UTF-8, possibly with a BOM; a copy re-saved by
Japanese Excel is cp932, read with a warning.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path


class RosterError(Exception):
    pass


@dataclass(frozen=True)
class RosterRow:
    name: str            # "Student" column as K-LMS writes it (e.g. "慶應 太郎" or "Keio, Taro")
    user_id: str         # Canvas user id ("ID" column)
    sis_user_id: str
    sis_login_id: str
    section: str


def decode(data: bytes) -> tuple[str, str | None]:
    """The text of a CSV file K-LMS wrote (UTF-8, BOM optional), and a warning if it was not UTF-8."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "the roster is not UTF-8; read it as cp932 (Excel's Japanese encoding)"
    except UnicodeDecodeError as exc:
        raise RosterError(f"the roster is neither UTF-8 nor cp932: {exc}") from None


def read_roster(path: str | Path) -> tuple[list[RosterRow], list[str]]:
    """The students of a K-LMS gradebook export, in file order, and warnings."""
    text, warning = decode(Path(path).read_bytes())
    warnings = [warning] if warning else []
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise RosterError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    for needed in ("Student", "ID", "Section"):
        if needed not in col:
            raise RosterError(f"{path}: no {needed!r} column in the header {header!r} "
                              "(export the gradebook from K-LMS: Grades > Export > CSV)")

    def cell(row: list[str], name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    out: list[RosterRow] = []
    seen: set[str] = set()
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        first = row[0] if row else ""
        if "Points Possible" in first:
            continue
        uid = cell(row, "ID")
        if not uid and not first.strip():
            continue  # Canvas's extra header rows ("Manual Posting", "Read Only")
        if not re.fullmatch(r"\d+", uid):
            warnings.append(f"roster line {lineno}: ID {uid!r} is not a Canvas user id; row skipped")
            continue
        if uid in seen:
            raise RosterError(f"{path} line {lineno}: user id {uid} appears twice")
        seen.add(uid)
        out.append(RosterRow(cell(row, "Student"), uid, cell(row, "SIS User ID"), cell(row, "SIS Login ID"),
                             cell(row, "Section")))
    return out, warnings
