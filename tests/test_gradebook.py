"""The SQLite gradebook with hand-written results (no grading): statuses, resumability keys, late policy,
overrides and their audit trail. Helpers here are reused by test_export.py."""
import hashlib
import json

import pytest

import grader_config
from autograder.batch import driver as batch
from autograder.record import gradebook
from autograder.ingest import submissions as ingest
from autograder.ingest.canvas_zip import Attachment, write_submissions_zip
from autograder.ingest.roster import RosterRow

VERSION = "test-grader-1"


def result(scores: dict | None = None, status: str = "ok", duration: float = 1.5, message: str = "") -> dict:
    """A result shaped like autograder.grade.grade_notebook's, full marks unless ``scores`` says otherwise."""
    scores = {q: float(p) for q, p in grader_config.POINTS.items()} | (scores or {})
    questions = {q: {"score": scores[q], "max_score": float(p),
                     "checks": [{"name": f"{q} check", "passed": scores[q] == p, "message": ""}]}
                 for q, p in grader_config.POINTS.items()}
    return {"status": status, "message": message, "total": sum(scores.values()),
            "max_total": float(sum(grader_config.POINTS.values())), "questions": questions, "cells": [],
            "measurements": {"accuracy": 0.97}, "duration_s": duration, "seed": grader_config.COURSE_SEED,
            "grader_version": VERSION, "sandbox": {}, "submission_sha256": ""}


def nb(text: str) -> bytes:
    return json.dumps({"cells": [], "metadata": {"who": text}, "nbformat": 4, "nbformat_minor": 5}).encode()


ROSTER = [RosterRow("慶應 太郎", "1001", "80012345", "taro@keio.jp", "月2"),
          RosterRow("三田 花子", "1002", "80012346", "hanako@keio.jp", "月2"),
          RosterRow("日吉 一郎", "1003", "80012347", "ichiro@keio.jp", "月3"),
          RosterRow("矢上 健", "1004", "80012348", "ken@keio.jp", "月3")]

ATTACHMENTS = [
    Attachment("慶應, 太郎", 1001, 501, "lec03.ipynb", nb("taro")),
    Attachment("三田, 花子", 1002, 502, "lec03-1.ipynb", nb("hanako"), late=True),
    Attachment("日吉, 一郎", 1003, 503, "lec03.ipynb", nb("ichiro-a")),
    Attachment("日吉, 一郎", 1003, 504, "lec03-1.ipynb", nb("ichiro-b")),
    Attachment("Shonan, Fuji", 1009, 509, "lec03.ipynb", nb("fuji")),
    Attachment(None, None, 510, "lec03.ipynb", nb("anon"), anonymous_id="x7Ya2"),
    Attachment(None, None, 511, "lec03.ipynb", nb("taro"), anonymous_id="Qq9Zk"),
]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_gradebook(path, attachments=ATTACHMENTS, roster=ROSTER, results=None, version=VERSION):
    """A gradebook as ``batch`` leaves it, with ``results`` {sha256: result or None (left ungraded)} standing
    in for grading (full marks for the others). Returns (conn, the sha256s batch would have graded)."""
    conn = gradebook.connect(path / "gradebook.db")
    if roster is not None:
        gradebook.load_roster(conn, roster, "ta")
    write_submissions_zip(path / "in.zip", attachments)
    work = path / f"work{len(list(path.glob('work*')))}"
    got = ingest.ingest(path / "in.zip", work, gradebook.roster_names(conn))
    batch_id = gradebook.begin_batch(conn, input="in.zip", input_sha256=got.input_sha256, grader_version=version,
                                     by="ta", workers=1)
    todo = batch._record_ingest(conn, batch_id, got, ingest.choose(got, gradebook.picks(conn)))
    todo = [s for s in todo if not gradebook.has_result(conn, s, version)]
    for s in todo:
        res = (results or {}).get(s, result())
        if res is not None:
            gradebook.record_result(conn, s, version, res, batch_id, "ta")
    gradebook.end_batch(conn, batch_id, "finished", "ta")
    gradebook.refresh_grades(conn)
    return conn, todo


def by_key(conn):
    return {g.student_key: g for g in gradebook.grades(conn)}


def test_statuses_and_flags(tmp_path):
    conn, todo = make_gradebook(tmp_path, results={sha(nb("taro")): result({"mlp": 5.0}), sha(nb("fuji")): None,
                                                   sha(nb("hanako")): result(status="timeout", message="gd_step hung")})
    g = by_key(conn)
    assert list(g) == ["1001", "1002", "1003", "1004", "1009", "anon_Qq9Zk", "anon_x7Ya2"]
    assert (g["1001"].status, g["1001"].final_score, g["1001"].questions["mlp"]) == ("ok", 75.0, 5.0)
    assert g["1002"].status == "timeout" and g["1002"].late and g["1002"].message == "gd_step hung"
    assert g["1003"].status == "ambiguous" and g["1003"].final_score is None
    assert g["1003"].flags == ["ambiguous: lec03.ipynb (attachment 503), lec03-1.ipynb (attachment 504)"]
    assert g["1004"].status == "missing" and g["1004"].final_score is None
    assert g["1009"].status == "pending" and g["1009"].flags == ["not_in_roster"]
    assert g["anon_x7Ya2"].flags == ["anonymous_unmatched"] and not g["anon_x7Ya2"].exportable
    # the anonymous copy of Taro's notebook is recognised once the named one is in the gradebook
    assert g["anon_Qq9Zk"].flags == ["anonymous_matched_to: 1001"]
    # identical content is graded once: Taro's sha was sent to grading once for two students
    assert len(todo) == len(set(todo)) == 4
    assert (g["1001"].name, g["1001"].sis_user_id, g["1001"].sis_login_id, g["1001"].section) == \
        ("慶應 太郎", "80012345", "taro@keio.jp", "月2")
    stored = {r["student_key"]: r for r in conn.execute("SELECT * FROM grades")}
    assert stored["1001"]["final_score"] == 75.0 and json.loads(stored["1003"]["flags"]) == g["1003"].flags


def test_results_are_keyed_by_content_and_grader_version(tmp_path):
    conn, first = make_gradebook(tmp_path)
    # same zip, same grader: nothing to grade; a new grader version: everything again
    _, again = make_gradebook(tmp_path)
    assert first and again == []
    _, new_version = make_gradebook(tmp_path, version="test-grader-2")
    assert sorted(new_version) == sorted(first)
    graded = conn.execute("SELECT count(*) FROM audit WHERE action='graded'").fetchone()[0]
    assert graded == 2 * len(first)
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 2 * len(first)


def test_sandbox_errors_are_retried(tmp_path):
    conn, todo = make_gradebook(tmp_path, results={sha(nb("taro")): batch.failed_result("worker died")})
    assert not gradebook.has_result(conn, sha(nb("taro")), VERSION)
    assert by_key(conn)["1001"].final_score is None and by_key(conn)["1001"].status == "sandbox_error"
    _, retried = make_gradebook(tmp_path)
    assert sha(nb("taro")) in retried
    assert by_key(conn)["1001"].status == "ok"


def test_pick_resolves_ambiguity(tmp_path):
    conn, _ = make_gradebook(tmp_path)
    gradebook.set_pick(conn, "1003", "504", "ta")
    _, todo = make_gradebook(tmp_path)
    assert todo == [sha(nb("ichiro-b"))]
    g = by_key(conn)["1003"]
    assert g.status == "ok" and g.filename == "lec03-1.ipynb" and g.flags[0].startswith("picked_by_ta")


@pytest.mark.parametrize("policy, final", [("none", 70.0), ("fraction", 56.0), ("zero", 0.0)])
def test_late_policy_keeps_raw_and_final(tmp_path, monkeypatch, policy, final):
    monkeypatch.setattr(grader_config, "LATE_POLICY", policy)
    monkeypatch.setattr(grader_config, "LATE_FRACTION", 0.2)
    conn, _ = make_gradebook(tmp_path, results={sha(nb("hanako")): result({"loss": 0.0})})
    g = by_key(conn)["1002"]
    assert g.late and (g.graded_total, g.raw_total, g.final_score) == (70.0, 70.0, final)
    assert by_key(conn)["1001"].final_score == 80.0     # on time: untouched


def test_overrides_audit_and_rebatching(tmp_path, monkeypatch):
    monkeypatch.setattr(grader_config, "LATE_POLICY", "fraction")
    conn, _ = make_gradebook(tmp_path)
    gradebook.add_override(conn, "1002", question="mlp", score=4.0, excused=False, reason="ran out of memory", by="ta1")
    g = by_key(conn)["1002"]
    assert (g.questions["mlp"], g.raw_total, g.final_score) == (4.0, 74.0, pytest.approx(59.2))
    gradebook.add_override(conn, "1001", question=None, score=77.5, excused=False, reason="regrade request", by="ta2")
    gradebook.add_override(conn, "1009", question=None, score=None, excused=True, reason="medical", by="ta2")
    with pytest.raises(gradebook.GradebookError):
        gradebook.add_override(conn, "1001", question="mlp", score=11, excused=False, reason="x", by="ta")
    with pytest.raises(gradebook.GradebookError):
        gradebook.add_override(conn, "1001", question="nope", score=1, excused=False, reason="x", by="ta")
    # a re-batch (even a regrade by a new grader) keeps every decision
    make_gradebook(tmp_path, version="test-grader-2")
    g = by_key(conn)
    assert g["1001"].final_score == 77.5 and g["1001"].graded_total == 80.0
    assert g["1002"].final_score == pytest.approx(59.2)
    assert g["1009"].excused and g["1009"].final_score is None
    events = conn.execute("SELECT by, action, student_key, detail FROM audit WHERE action IN "
                          "('override', 'excuse', 'clear') ORDER BY id").fetchall()
    assert [(e["by"], e["action"], e["student_key"], json.loads(e["detail"])["reason"]) for e in events] == [
        ("ta1", "override", "1002", "ran out of memory"), ("ta2", "override", "1001", "regrade request"),
        ("ta2", "excuse", "1009", "medical")]
    gradebook.add_override(conn, "1001", question=None, score=None, excused=False, reason="undo", by="ta3", clear=True)
    assert by_key(conn)["1001"].final_score == 80.0


def test_override_on_an_older_submission_is_flagged(tmp_path):
    conn, _ = make_gradebook(tmp_path)
    gradebook.add_override(conn, "1001", question=None, score=50.0, excused=False, reason="copied", by="ta")
    newer = [Attachment("慶應, 太郎", 1001, 601, "lec03.ipynb", nb("taro v2"))] + ATTACHMENTS[1:]
    make_gradebook(tmp_path, attachments=newer)
    g = by_key(conn)["1001"]
    assert g.final_score == 50.0 and "override_predates_submission" in g.flags


def test_resolve_student(tmp_path):
    conn, _ = make_gradebook(tmp_path)
    for ident in ("1002", "80012346", "hanako@keio.jp", "三田 花子"):
        assert gradebook.resolve_student(conn, ident) == "1002"
    assert gradebook.resolve_student(conn, "anon_x7Ya2") == "anon_x7Ya2"
    with pytest.raises(gradebook.GradebookError):
        gradebook.resolve_student(conn, "nobody")


def test_wal_and_transactions(tmp_path):
    conn, _ = make_gradebook(tmp_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    before = conn.execute("SELECT count(*) FROM results").fetchone()[0]
    with pytest.raises(RuntimeError):
        with gradebook.transaction(conn):
            conn.execute("DELETE FROM results")
            raise RuntimeError("killed half-way")
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == before


def test_attack_file_changes_no_other_students_status(tmp_path):
    """Issue 8 part 8 through the gradebook: a student not on the roster uploads lec03_1002_1_lec03.ipynb."""
    attack = Attachment("Outsider, Eve", 3005, 777, "lec03_1002_1_lec03.ipynb", nb("eve"))
    conn, _ = make_gradebook(tmp_path, attachments=ATTACHMENTS + [attack])
    g = by_key(conn)
    assert g["1002"].status == "ok" and g["1002"].filename == "lec03-1.ipynb" and g["1002"].flags == []
    assert g["1002"].final_score == 80.0
    assert "3005" not in g                                   # attributed to nobody
    rows = conn.execute("SELECT name, reason, student_key FROM entries").fetchall()
    [row] = [r for r in rows if "3005" in r["name"]]
    assert row["student_key"] is None and "doubtful" in row["reason"]
