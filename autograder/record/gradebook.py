"""The gradebook: one SQLite file (WAL) that ``batch`` fills and ``override``, ``export``, ``upload``,
``feedback`` and ``report`` read.

Only the process that runs ``batch`` (or ``override``) writes; grading workers return plain dicts.
Every finished result is written in its own transaction, so a batch killed at any moment (``kill -9``)
leaves whole results only, and a rerun grades exactly what is missing.

Schema (``SCHEMA`` below is the source of truth; this is its reading guide)::

    meta(key PRIMARY KEY, value)             schema_version, assignment; klms_assignment_id and
                                             klms_title when the roster had one "Title (id)" column
    students                                 one row per person (or anonymous id) we know of
      student_key PRIMARY KEY                Canvas user id ("1001"); "anon_<id>" under anonymous grading;
                                             "file:<name>" for a folder file not named the Canvas way
      user_id, name, sis_user_id,            from the K-LMS roster CSV (name = its "Student" column; the
      sis_login_id, section                  zip's name slug when the person is not in the roster)
      in_roster (0/1), roster_order          row position in the roster: the export's order
      current_submission -> submissions.id   the notebook graded for this student (NULL: none chosen)
    batches                                  one row per ``batch`` run: started_at, finished_at, input,
                                             input_sha256, grader_version, by, workers (local
                                             processes; NULL when a Dask scheduler graded: see audit),
                                             state running | finished | interrupted
    submissions                              one row per notebook seen: student_key, entry_name (name in
                                             the zip), filename (the student's own), attachment_id, sha256,
                                             size, late (Canvas's LATE marker), flags (JSON list of
                                             strings for a TA), first_batch, last_batch;
                                             UNIQUE(student_key, entry_name, sha256)
    results                                  one row per graded content and grader version:
      PRIMARY KEY (sha256, grader_version)   an unchanged notebook is never graded twice by one grader
      status                                 ok | timeout | crashed | invalid | sandbox_error
      message, total, max_total, seed, duration_s, graded_at, batch_id
      questions                              JSON {qid: {"score", "max_score", "checks": [...]}}
      measurements                           JSON, as grade_notebook returned it
      result_json                            the full result dict of autograder.grade.grade_notebook
    entries                                  files of an input that were not graded, and why:
                                             batch_id, name, size, reason, student_key (when the
                                             name says whose it is)
    picks                                    a TA's choice of notebook when a student attached several:
                                             student_key PRIMARY KEY, attachment_id, by, at
    overrides                                a TA's decisions: student_key, question (NULL = the whole
                                             assignment), score, excused (0/1), reason, by, at, sha256 (the
                                             notebook current when decided), cleared (0/1); the latest row
                                             per (student_key, question) is in force, across re-batching
    audit                                    append-only log: at, by, action, student_key, detail (JSON);
                                             actions: batch_start, batch_end, graded, override, excuse,
                                             clear, pick, roster, upload
    grades                                   materialised view of ``grades()`` (refreshed by batch and
                                             override) for SQL readers: student_key PRIMARY KEY, status,
                                             submission_id, sha256, late, graded_total, raw_total,
                                             final_score, excused, max_total, questions (JSON {qid: score}),
                                             flags (JSON list), overridden (0/1)

A student's status: ``missing`` (in the roster, nothing submitted), ``no_notebook`` (files but no
notebook), ``ambiguous`` (several notebooks, none chosen: see ``batch --pick``), ``rejected`` (the
notebook broke a limit), ``pending`` (not graded yet), else the result's status (``autograder.result``).
Scores: ``graded_total`` is the grader's total; ``raw_total`` applies question overrides; ``final_score``
then applies grader_config.LATE_POLICY to late submissions, or is the whole-assignment override when one
is in force. This module stores and reads; the scoring itself is ``autograder.score`` (``final.score``).
"""
from __future__ import annotations

import contextlib
import getpass
import json
import math
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from autograder.config import grader_config as config
from autograder.result import GradeStatus, Result, number, parse
from autograder.score import final
from autograder.score.status import retried

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS students (
    student_key TEXT PRIMARY KEY,
    user_id TEXT,
    name TEXT NOT NULL DEFAULT '',
    sis_user_id TEXT NOT NULL DEFAULT '',
    sis_login_id TEXT NOT NULL DEFAULT '',
    section TEXT NOT NULL DEFAULT '',
    in_roster INTEGER NOT NULL DEFAULT 0,
    roster_order INTEGER,
    current_submission INTEGER REFERENCES submissions(id)
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    input TEXT NOT NULL,
    input_sha256 TEXT,
    grader_version TEXT NOT NULL,
    by TEXT NOT NULL,
    workers INTEGER,
    state TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    student_key TEXT NOT NULL REFERENCES students(student_key),
    entry_name TEXT NOT NULL,
    filename TEXT NOT NULL,
    attachment_id TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '[]',
    first_batch INTEGER REFERENCES batches(id),
    last_batch INTEGER REFERENCES batches(id),
    UNIQUE (student_key, entry_name, sha256)
);
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    total REAL,
    max_total REAL,
    questions TEXT NOT NULL DEFAULT '{}',
    measurements TEXT NOT NULL DEFAULT '{}',
    seed INTEGER,
    duration_s REAL,
    result_json TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    batch_id INTEGER REFERENCES batches(id),
    PRIMARY KEY (sha256, grader_version)
);
CREATE TABLE IF NOT EXISTS entries (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    name TEXT NOT NULL,
    size INTEGER,
    reason TEXT NOT NULL,
    student_key TEXT
);
CREATE TABLE IF NOT EXISTS picks (
    student_key TEXT PRIMARY KEY,
    attachment_id TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS overrides (
    id INTEGER PRIMARY KEY,
    student_key TEXT NOT NULL,
    question TEXT,
    score REAL,
    excused INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    sha256 TEXT,
    cleared INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    action TEXT NOT NULL,
    student_key TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS grades (
    student_key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    submission_id INTEGER,
    sha256 TEXT,
    late INTEGER NOT NULL DEFAULT 0,
    graded_total REAL,
    raw_total REAL,
    final_score REAL,
    excused INTEGER NOT NULL DEFAULT 0,
    max_total REAL NOT NULL,
    questions TEXT NOT NULL DEFAULT '{}',
    flags TEXT NOT NULL DEFAULT '[]',
    overridden INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS submissions_sha ON submissions(sha256);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action, student_key);
"""


class GradebookError(Exception):
    pass


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def who(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return f"uid{os.getuid()}"


def max_total() -> float:
    return float(sum(config.POINTS.values()))


def connect(path: str | os.PathLike, *, create: bool = True) -> sqlite3.Connection:
    """Open (and create) the gradebook; autocommit mode, transactions through ``transaction``."""
    path = Path(path)
    if not create and not path.exists():
        raise GradebookError(f"no gradebook at {path} (run 'python -m autograder batch' first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise GradebookError(f"{path} is a folder, not a gradebook")
    if path.exists() and path.stat().st_size and not _looks_like_sqlite(path):
        raise GradebookError(f"{path} is not a gradebook (not an SQLite file)")
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    if not create:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "students", "results"} <= tables:
            conn.close()
            raise GradebookError(f"{path} is an SQLite file but not a gradebook written by batch")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    with transaction(conn):
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('assignment', ?)", (config.ASSIGNMENT,))
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise GradebookError(f"{path} has schema version {version}, this code reads {SCHEMA_VERSION}")
    return conn


def _looks_like_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def audit(conn: sqlite3.Connection, by: str, action: str, student_key: str | None = None, **detail) -> None:
    conn.execute("INSERT INTO audit (at, by, action, student_key, detail) VALUES (?, ?, ?, ?, ?)",
                 (now(), by, action, student_key, json.dumps(detail, ensure_ascii=False, sort_keys=True)))


# --- batch side ---------------------------------------------------------------------------------------

def begin_batch(conn, *, input: str, input_sha256: str | None, grader_version: str, by: str,
                workers: int | None, scheduler: str | None = None) -> int:
    """A new batch. ``workers``: local grading processes; None when a Dask ``scheduler`` grades (its
    address is in the audit log)."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO batches (started_at, input, input_sha256, grader_version, by, workers) "
            "VALUES (?, ?, ?, ?, ?, ?)", (now(), input, input_sha256, grader_version, by, workers))
        audit(conn, by, "batch_start", batch=cur.lastrowid, input=input, grader_version=grader_version,
              **({"scheduler": scheduler} if scheduler else {}))
        return cur.lastrowid


def mark_interrupted(conn, by: str) -> int:
    """Batches left 'running' by a process that died (call while holding the batch lock); how many."""
    with transaction(conn):
        stale = [r[0] for r in conn.execute("SELECT id FROM batches WHERE state='running'")]
        for batch_id in stale:
            conn.execute("UPDATE batches SET state='interrupted' WHERE id=?", (batch_id,))
            audit(conn, by, "batch_end", batch=batch_id, state="interrupted", found_later=True)
    return len(stale)


def end_batch(conn, batch_id: int, state: str, by: str, **detail) -> None:
    with transaction(conn):
        conn.execute("UPDATE batches SET finished_at=?, state=? WHERE id=?", (now(), state, batch_id))
        audit(conn, by, "batch_end", batch=batch_id, state=state, **detail)


def load_roster(conn, rows, by: str) -> None:
    """Replace roster membership with ``rows`` (``autograder.ingest.roster.RosterRow``s)."""
    with transaction(conn):
        conn.execute("UPDATE students SET in_roster=0, roster_order=NULL")
        for order, r in enumerate(rows):
            conn.execute(
                "INSERT INTO students (student_key, user_id, name, sis_user_id, sis_login_id, section, "
                "in_roster, roster_order) VALUES (?, ?, ?, ?, ?, ?, 1, ?) "
                "ON CONFLICT(student_key) DO UPDATE SET user_id=excluded.user_id, name=excluded.name, "
                "sis_user_id=excluded.sis_user_id, sis_login_id=excluded.sis_login_id, "
                "section=excluded.section, in_roster=1, roster_order=excluded.roster_order",
                (r.user_id, r.user_id, r.name, r.sis_user_id, r.sis_login_id, r.section, order))
        audit(conn, by, "roster", students=len(rows))


def roster_names(conn) -> dict[str, str]:
    """{Canvas user id: roster name} of the roster's students (settles doubtful zip names)."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT user_id, name FROM students WHERE in_roster=1 AND user_id IS NOT NULL")}


def set_meta(conn, key: str, value: str) -> None:
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def get_meta(conn, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def roster_user_ids(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT user_id FROM students WHERE in_roster=1 AND user_id IS NOT NULL")}


def record_submission(conn, batch_id: int, *, student_key: str, user_id: str | None, name_slug: str,
                      entry_name: str, filename: str, attachment_id: str | None, sha256: str, size: int,
                      late: bool, flags: list[str]) -> int:
    """Insert or refresh one notebook's row (call inside a transaction); returns its id."""
    conn.execute("INSERT OR IGNORE INTO students (student_key, user_id, name) VALUES (?, ?, ?)",
                 (student_key, user_id, name_slug))
    row = conn.execute("SELECT id FROM submissions WHERE student_key=? AND entry_name=? AND sha256=?",
                       (student_key, entry_name, sha256)).fetchone()
    flags_json = json.dumps(sorted(set(flags)), ensure_ascii=False)
    if row:
        conn.execute("UPDATE submissions SET last_batch=?, flags=?, late=? WHERE id=?",
                     (batch_id, flags_json, int(late), row[0]))
        return row[0]
    cur = conn.execute(
        "INSERT INTO submissions (student_key, entry_name, filename, attachment_id, sha256, size, late, "
        "flags, first_batch, last_batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (student_key, entry_name, filename, attachment_id, sha256, size, int(late), flags_json, batch_id,
         batch_id))
    return cur.lastrowid


def set_current(conn, student_key: str, submission_id: int | None) -> None:
    conn.execute("UPDATE students SET current_submission=? WHERE student_key=?", (submission_id, student_key))


def record_entry(conn, batch_id: int, name: str, size: int | None, reason: str,
                 student_key: str | None = None, user_id: str | None = None, name_slug: str = "") -> None:
    """A file not graded (call inside a transaction); its student is made known when its name says whose."""
    if student_key is not None:
        conn.execute("INSERT OR IGNORE INTO students (student_key, user_id, name) VALUES (?, ?, ?)",
                     (student_key, user_id, name_slug))
    conn.execute("INSERT INTO entries (batch_id, name, size, reason, student_key) VALUES (?, ?, ?, ?, ?)",
                 (batch_id, name, size, reason, student_key))


def has_result(conn, sha256: str, grader_version: str) -> bool:
    row = conn.execute("SELECT status FROM results WHERE sha256=? AND grader_version=?",
                       (sha256, grader_version)).fetchone()
    return row is not None and not retried(row[0])


def record_result(conn, sha256: str, grader_version: str, result: dict, batch_id: int | None,
                  by: str) -> None:
    """Store one finished result and its audit event in one transaction.

    Strings are made valid UTF-8 first (a lone surrogate printed by a notebook becomes U+FFFD)."""
    result = clean_strings(result)
    questions = result.get("questions") or {}
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO results (sha256, grader_version, status, message, total, max_total, "
            "questions, measurements, seed, duration_s, result_json, graded_at, batch_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sha256, grader_version, str(result.get("status", "sandbox_error")), str(result.get("message", "")),
             number(result.get("total")), number(result.get("max_total")),
             json.dumps(questions, ensure_ascii=False, sort_keys=True),
             json.dumps(result.get("measurements") or {}, ensure_ascii=False, sort_keys=True),
             result.get("seed"), number(result.get("duration_s")),
             json.dumps(result, ensure_ascii=False, sort_keys=True, default=str), now(), batch_id))
        audit(conn, by, "graded", None, sha256=sha256, grader_version=grader_version, batch=batch_id,
              status=result.get("status"), total=number(result.get("total")))


def clean_strings(obj, depth: int = 0):
    """``obj`` with every string (dict keys too) valid UTF-8; depth-limited (deeper parts become text)."""
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", obj) if _has_surrogate(obj) else obj
    if depth > 60:
        return clean_strings(repr(obj)[:1000])
    if isinstance(obj, dict):
        return {clean_strings(str(k) if not isinstance(k, str) else k, depth + 1): clean_strings(v, depth + 1)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_strings(v, depth + 1) for v in obj]
    return obj


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def set_pick(conn, student_key: str, attachment_id: str, by: str) -> None:
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO picks VALUES (?, ?, ?, ?)", (student_key, attachment_id, by, now()))
        audit(conn, by, "pick", student_key, attachment_id=attachment_id)


def picks(conn) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT student_key, attachment_id FROM picks")}


# --- TA decisions -------------------------------------------------------------------------------------

def resolve_student(conn, ident: str) -> str:
    """A student key from a Canvas user id, SIS user id, SIS login id, ``anon_<id>`` or exact name."""
    ident = ident.strip()
    for column in ("student_key", "user_id", "sis_user_id", "sis_login_id", "name"):
        rows = conn.execute(f"SELECT student_key FROM students WHERE {column}=? AND {column}!=''",
                            (ident,)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if len(rows) > 1:
            raise GradebookError(f"{ident!r} matches {len(rows)} students by {column}; use the Canvas user id")
    raise GradebookError(f"no student {ident!r} in the gradebook")


def add_override(conn, student_key: str, *, question: str | None, score: float | None, excused: bool,
                 reason: str, by: str, clear: bool = False) -> None:
    if question is not None and question not in config.POINTS:
        raise GradebookError(f"unknown question {question!r}; questions: {', '.join(config.QUESTIONS)}")
    if not clear and not excused:
        top = config.POINTS[question] if question else max_total()
        if score is None or not math.isfinite(score) or not 0 <= score <= top:
            raise GradebookError(f"score must lie in [0, {top}]")
    if excused and question is not None:
        raise GradebookError("K-LMS excuses a whole assignment, not a question")
    cur = conn.execute("SELECT s.sha256 FROM students st LEFT JOIN submissions s ON s.id=st.current_submission "
                       "WHERE st.student_key=?", (student_key,)).fetchone()
    sha = cur[0] if cur else None
    with transaction(conn):
        conn.execute("INSERT INTO overrides (student_key, question, score, excused, reason, by, at, sha256, "
                     "cleared) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (student_key, question, None if clear or excused else score, int(excused), reason, by,
                      now(), sha, int(clear)))
        action = "clear" if clear else "excuse" if excused else "override"
        audit(conn, by, action, student_key, question=question, score=score, reason=reason, sha256=sha)
    refresh_grades(conn)


def active_overrides(conn) -> dict[str, dict[str | None, sqlite3.Row]]:
    """{student_key: {question or None: the override row in force}} (cleared ones left out)."""
    out: dict[str, dict[str | None, sqlite3.Row]] = {}
    for row in conn.execute("SELECT * FROM overrides ORDER BY id"):
        out.setdefault(row["student_key"], {})[row["question"]] = row
    return {k: {q: r for q, r in v.items() if not r["cleared"]} for k, v in out.items()}


# --- reading grades ----------------------------------------------------------------------------------

@dataclass
class Grade:
    student_key: str
    user_id: str | None
    name: str
    sis_user_id: str
    sis_login_id: str
    section: str
    in_roster: bool
    roster_order: int | None
    status: str
    submission_id: int | None = None
    entry_name: str | None = None
    filename: str | None = None
    sha256: str | None = None
    late: bool = False
    message: str = ""
    questions: dict[str, float | None] = field(default_factory=dict)   # after question overrides
    graded_total: float | None = None
    raw_total: float | None = None
    final_score: float | None = None
    excused: bool = False
    max_total: float = 0.0
    flags: list[str] = field(default_factory=list)
    overrides: list[dict] = field(default_factory=list)
    result: dict | None = None

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def exportable(self) -> bool:
        """Can go to K-LMS: a real Canvas user id."""
        return self.user_id is not None


def _latest_results(conn) -> dict[str, sqlite3.Row]:
    out = {}
    for row in conn.execute("SELECT * FROM results ORDER BY graded_at, rowid"):
        out[row["sha256"]] = row
    return out


@dataclass
class _Snapshot:
    """What ``grades()`` reads from the database, once."""

    results: dict[str, sqlite3.Row]
    overrides: dict[str, dict[str | None, sqlite3.Row]]
    submissions: dict[int, sqlite3.Row]
    students: list[sqlite3.Row]
    has_files: set[str]                 # student keys with a notebook or another file
    have_roster: bool
    named_shas: dict[str, str]          # sha256 of a named student's current notebook -> their key


def _snapshot(conn) -> _Snapshot:
    subs = {r["id"]: r for r in conn.execute("SELECT * FROM submissions")}
    students = conn.execute(
        "SELECT * FROM students ORDER BY in_roster DESC, roster_order, student_key").fetchall()
    has_submissions = {r[0] for r in conn.execute("SELECT DISTINCT student_key FROM submissions")}
    has_files = has_submissions | {r[0] for r in conn.execute(
        "SELECT DISTINCT student_key FROM entries WHERE student_key IS NOT NULL")}
    named_shas: dict[str, str] = {}
    for st in students:
        sub = subs.get(st["current_submission"])
        if sub is not None and st["user_id"] is not None:
            named_shas.setdefault(sub["sha256"], st["student_key"])
    return _Snapshot(_latest_results(conn), active_overrides(conn), subs, students, has_files,
                     roster_size(conn) > 0, named_shas)


def grades(conn) -> list[Grade]:
    """Every student's grade, roster order first, then the others by key. The one reader of scores."""
    snap = _snapshot(conn)
    out = []
    for st in snap.students:
        if not st["in_roster"] and st["student_key"] not in snap.has_files:
            continue
        g = Grade(st["student_key"], st["user_id"], st["name"], st["sis_user_id"], st["sis_login_id"],
                  st["section"], bool(st["in_roster"]), st["roster_order"], GradeStatus.MISSING.value,
                  max_total=max_total(), questions={q: None for q in config.QUESTIONS})
        sub = snap.submissions.get(st["current_submission"])
        if sub is not None:
            flags = _graded_submission(g, sub, snap.results.get(sub["sha256"]))
        elif g.student_key in snap.has_files:
            flags = _files_without_notebook(conn, g)
        else:
            flags = []
        flags += _identity_flags(g, snap)
        _score(g, snap.overrides.get(g.student_key, {}), flags)
        out.append(g)
    return out


def _graded_submission(g: Grade, sub: sqlite3.Row, res: sqlite3.Row | None) -> list[str]:
    """The student's current notebook and its result, if any, into ``g``; the flags they bring."""
    g.submission_id, g.entry_name, g.filename, g.sha256 = sub["id"], sub["entry_name"], sub["filename"], sub["sha256"]
    g.late = bool(sub["late"])
    flags = json.loads(sub["flags"])
    if any(f.startswith("too_large") for f in flags):
        g.status = GradeStatus.REJECTED.value
    elif res is None:
        g.status = GradeStatus.PENDING.value
    else:
        g.status, g.message = res["status"], res["message"]
        g.result = parse(json.loads(res["result_json"]))
        qs = g.result["questions"]
        g.questions = {q: qs[q]["score"] if q in qs else None for q in config.QUESTIONS}
        g.graded_total = res["total"]
        g.max_total = res["max_total"] or g.max_total
        flags += result_flags(g.result)
    return flags


def _files_without_notebook(conn, g: Grade) -> list[str]:
    """A student with files but no notebook chosen: ambiguous (several) or no_notebook; their flags."""
    latest = conn.execute("SELECT flags FROM submissions WHERE student_key=? ORDER BY last_batch DESC, id "
                          "LIMIT 1", (g.student_key,)).fetchone()
    flags = [f for f in json.loads(latest[0]) if f != "not_chosen"] if latest else []
    ambiguous = any(f.startswith("ambiguous") for f in flags)
    g.status = (GradeStatus.AMBIGUOUS if ambiguous else GradeStatus.NO_NOTEBOOK).value
    if not ambiguous:
        files = [r[0] for r in conn.execute(
            "SELECT name FROM entries WHERE student_key=? AND batch_id=(SELECT max(batch_id) FROM entries "
            "WHERE student_key=?) ORDER BY name", (g.student_key, g.student_key))]
        flags += [f"no notebook among: {', '.join(files)}"] if files else []
    return flags


def _identity_flags(g: Grade, snap: _Snapshot) -> list[str]:
    """Who the grade belongs to, when that needs a TA: not in the roster, anonymous, not a Canvas name."""
    if not g.in_roster and g.user_id is not None and snap.have_roster:
        return ["not_in_roster"]
    if g.anonymous and g.student_key.startswith("anon_"):
        other = snap.named_shas.get(g.sha256 or "")
        return [f"anonymous_matched_to: {other}" if other else "anonymous_unmatched"]
    if g.anonymous:
        return ["not_a_canvas_name"]
    return []


def _score(g: Grade, overrides: dict, flags: list[str]) -> None:
    """The score stage's verdict (overrides, late policy) into ``g``; its flags sorted and unique."""
    s = final.score(status=g.status, graded_total=g.graded_total, questions=g.questions, late=g.late,
                    sha256=g.sha256, overrides=overrides)
    g.questions, g.raw_total, g.final_score, g.excused, g.overrides = (
        s.questions, s.raw_total, s.final_score, s.excused, s.overrides)
    g.flags = sorted(set(flags + s.flags))


def result_flags(res: Result | None) -> list[str]:
    """The grader's notes for a TA (``result["flags"]``: [{"kind", "message"}]), as gradebook flags."""
    out = []
    for f in res["flags"] if res else []:
        message = f["message"].strip()
        out.append(f"{f['kind']}: {message}" if message else f["kind"])
    return out


def roster_size(conn) -> int:
    return conn.execute("SELECT count(*) FROM students WHERE in_roster=1").fetchone()[0]


def refresh_grades(conn) -> list[Grade]:
    """Recompute ``grades()`` and store it in the ``grades`` table, read and written in one transaction (an
    override committed by another TA in between is never left out of the table)."""
    with transaction(conn):
        rows = grades(conn)
        conn.execute("DELETE FROM grades")
        for g in rows:
            conn.execute(
                "INSERT INTO grades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (g.student_key, g.status, g.submission_id, g.sha256, int(g.late), g.graded_total, g.raw_total,
                 g.final_score, int(g.excused), g.max_total, json.dumps(g.questions, sort_keys=True),
                 json.dumps(g.flags, ensure_ascii=False), int(bool(g.overrides))))
    return rows


# --- for a TA: who needs a look, and what to do next --------------------------------------------------

def label(g: Grade) -> str:
    """How a person names a student: roster name and Canvas user id ("慶應 太郎 (1001)"), else the key."""
    if g.user_id is not None:
        return f"{g.name} ({g.user_id})" if g.name and g.name != g.user_id else str(g.user_id)
    return g.student_key


def counted(grades: list[Grade]) -> list[Grade]:
    """The grades that are people: an anonymous file matched to a named student is that student's (it is
    not counted a second time)."""
    return [g for g in grades if not any(f.startswith("anonymous_matched_to") for f in g.flags)]


NEXT_STEP = {
    "invalid": "the file is not a readable notebook: ask the student for the .ipynb (Colab: File > Download > "
               ".ipynb); the exported 0 stands until then",
    "timeout": "read the feedback (which cell or call ran out of time); regrade with --force if the machine was "
               "overloaded, else the score stands",
    "crashed": "read the feedback (memory, os._exit); the points earned before the crash stand",
    "sandbox_error": "a grader fault, not the student's: run batch again (it retries these); if it persists, "
                     "grade by hand with override",
    "ambiguous": "choose the notebook: batch ... --pick USER=ATTACHMENT_ID (ids in the flags)",
    "no_notebook": "no .ipynb among the files: contact the student",
    "rejected": "the notebook broke a size limit: look at it, grade by hand with override",
    "pending": "not graded yet: run batch again",
    "missing": "nothing submitted: excuse (override --excuse) or leave; export --missing zero writes 0",
}
FLAG_STEP = {
    "not_in_roster": "not in the roster: check the roster (late enrolment?) before importing",
    "anonymous_unmatched": "anonymous: batch the zip again after K-LMS shows names",
    "not_a_canvas_name": "the file is not named the K-LMS way: not exported",
    "other_notebooks": "several notebooks, the one named like the assignment was graded: check",
    "other_files": "other files beside the notebook: check nothing is missing",
    "same_file_as": "the same file as another student: look at both",
    "override_predates_submission": "an override was decided on an earlier notebook: check it still holds",
    "question_override_without_result": "a question override without a graded notebook has no effect",
}


def triage(grades: list[Grade], conn=None) -> list[dict]:
    """Every student (and every doubtful file) that needs a TA: [{"who", "status", "what", "next"}].

    Statuses other than ok, late submissions and every flag (the grader's own notes included); with
    ``conn``, also the files whose names were doubtful (attributed to nobody)."""
    rows = []
    for g in counted(grades):
        notes, steps = [], []
        if g.status != "ok":
            if g.message:
                notes.append(" ".join(str(g.message).split())[:200])
            if not g.excused:
                steps.append(NEXT_STEP.get(g.status, "look at it"))
            else:
                steps.append("excused")
        if g.late:
            notes.append("late")
            steps.append(f"LATE_POLICY={config.LATE_POLICY}")
        notable = False
        for f in g.flags:
            kind = f.split(":", 1)[0]
            if kind == "picked_by_ta":
                continue
            notable = True
            notes.append(f)
            step = None if kind == "ambiguous" else FLAG_STEP.get(kind, "look at it")
            if step and step not in steps:
                steps.append(step)
        if g.status == "ok" and not g.late and not notable:
            continue
        if g.status == "missing" and g.excused and not g.flags:
            continue
        rows.append({"who": label(g), "status": g.status, "what": "; ".join(notes), "next": "; ".join(steps)})
    if conn is not None:
        for name, reason in conn.execute(
                "SELECT name, reason FROM entries WHERE student_key IS NULL AND reason LIKE 'doubtful%' AND "
                "batch_id=(SELECT max(id) FROM batches) ORDER BY name"):
            rows.append({"who": "?", "status": "doubtful file", "what": f"{name}: {reason}",
                         "next": "attributed to nobody: find whose it is, rename it the K-LMS way or grade by "
                                 "hand with override"})
    return rows
