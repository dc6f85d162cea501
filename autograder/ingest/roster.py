"""The roster: the gradebook CSV a TA exports from K-LMS (Grades > Export).

Row 1 is the header: ``Student`` (or ``LastName`` and ``FirstName``), ``ID``, ``SIS User ID`` (may be
absent), ``SIS Login ID``, optional ``Integration ID`` / ``Root Account``, ``Section``, then one column per assignment. A ``Points Possible``
row (its first cell holds those words, Canvas pads it with spaces) and Canvas's other non-student rows
(first cells blank, e.g. "Manual Posting") may follow. UTF-8, possibly with a BOM; a copy re-saved by
Japanese Excel is cp932, read with a warning. Comma or semicolon separated (Canvas's
"semicolon" setting). The Student View row ("Student, Test") is not a student.
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


@dataclass(frozen=True)
class Roster:
    rows: list[RosterRow]
    warnings: list[str]
    assignments: list[tuple[str, str]]     # (title, assignment id) of each "Title (id)" column


_NOT_ASSIGNMENT = re.compile(r"(Current|Final|Override|Unposted).*(Score|Points|Grade)", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"\A(.*)\s\((\d+)\)\Z", re.DOTALL)          # Canvas's /\A(.*)\s\((\d+)\)\z/
TEST_STUDENT = "Student, Test"


def _delimiter(text: str) -> str:
    """Canvas writes "," or, with the user's semicolon setting, ";" (lib/csv_with_i18n.rb)."""
    head = text.split("\n", 1)[0]
    return ";" if head.count(";") > head.count(",") else ","


def read_roster_full(path: str | Path) -> Roster:
    """The students of a K-LMS gradebook export, in file order, its assignment columns, and warnings.

    Reads every export K-LMS writes: one ``Student`` column (the sortable name, "Keio, Taro") or split
    ``LastName``/``FirstName``; comma or semicolon; UTF-8 with or without BOM (cp932 with a warning). The
    "Student, Test" row (Student View) is skipped.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RosterError(f"{path} is a folder, not a CSV file") from None
    text, warning = decode(data)
    warnings = [warning] if warning else []
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    if not rows:
        raise RosterError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    split_names = "LastName" in col and "FirstName" in col
    needed = ["ID", "Section"] + ([] if split_names else ["Student"])
    missing = [n for n in needed if n not in col]
    if missing:
        raise RosterError(f"{path}: not a K-LMS gradebook export: no {', '.join(repr(m) for m in missing)} "
                          f"column; found {header!r} (export the gradebook from K-LMS: Grades > Export > CSV)")
    assignments = []
    for h in header[col["Section"] + 1:]:
        m = _ASSIGNMENT.match(h)
        if m and not _NOT_ASSIGNMENT.search(h):
            assignments.append((m.group(1).strip(), m.group(2)))

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
        if split_names:
            last, given = cell(row, "LastName"), cell(row, "FirstName")
            name = f"{last}, {given}" if last and given else last or given
        else:
            name = cell(row, "Student")
        uid = cell(row, "ID")
        if not uid and not first.strip():
            continue  # Canvas's extra header rows ("Manual Posting", "Read Only")
        if name == TEST_STUDENT:
            continue  # Student View's test student
        if not re.fullmatch(r"\d+", uid):
            warnings.append(f"roster line {lineno}: ID {uid!r} is not a Canvas user id; row skipped")
            continue
        if uid in seen:
            raise RosterError(f"{path} line {lineno}: user id {uid} appears twice")
        seen.add(uid)
        out.append(RosterRow(name, uid, cell(row, "SIS User ID"), cell(row, "SIS Login ID"), cell(row, "Section")))
    return Roster(out, warnings, assignments)


def read_roster(path: str | Path) -> tuple[list[RosterRow], list[str]]:
    """The students of a K-LMS gradebook export, in file order, and warnings (see ``read_roster_full``)."""
    r = read_roster_full(path)
    return r.rows, r.warnings
