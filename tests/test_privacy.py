"""Issue 10 part 1: what a TA writes privately (override reasons) never reaches anything a student sees:
upload comments, feedback files, the K-LMS CSV. Staff files (questions CSV, report) may show it."""
import os

from autograder.record import gradebook
from autograder.__main__ import main
from canvas_server import FakeCanvas, Student
from test_gradebook import make_gradebook, nb, result, sha

TOKEN = "7~PrivacyToken0123456789"
REASON = "suspected copying from 2001 (case #12) PRIVATE-7f3a"
MEDICAL = "medical certificate PRIVATE-9c1e"


def test_no_reason_reaches_a_student(tmp_path, capsys, monkeypatch):
    conn, _ = make_gradebook(tmp_path, results={sha(nb("taro")): result({"mlp": 3.25}), sha(nb("fuji")): None})
    db = str(tmp_path / "gradebook.db")
    # an override of every kind, each with the planted reason
    gradebook.add_override(conn, "1001", question="mlp", score=7.0, excused=False, reason=REASON, by="ta")
    gradebook.add_override(conn, "1002", question=None, score=50.0, excused=False, reason=REASON, by="ta")
    gradebook.add_override(conn, "1003", question=None, score=40.0, excused=False, reason=REASON, by="ta")  # ambiguous
    gradebook.add_override(conn, "1004", question=None, score=None, excused=True, reason=MEDICAL, by="ta")  # missing
    gradebook.add_override(conn, "1009", question=None, score=30.0, excused=False, reason=REASON, by="ta")
    gradebook.add_override(conn, "1009", question=None, score=None, excused=False, reason=REASON, by="ta",
                           clear=True)
    secrets = (REASON, MEDICAL, "PRIVATE-")

    klms, qs = tmp_path / "klms.csv", tmp_path / "q.csv"
    assert main(["export", "--db", db, "--canvas-csv", str(klms), "--assignment-id", "12345",
                 "--questions-csv", str(qs)]) == 0
    assert main(["feedback", "--db", db, "--out", str(tmp_path / "fb")]) == 0
    fake = FakeCanvas(TOKEN, 4242, 12345, [Student(u) for u in (1001, 1002, 1003, 1004, 1009)])
    url = fake.start()
    try:
        monkeypatch.setenv("CANVAS_API_TOKEN", TOKEN)
        assert main(["upload", "--db", db, "--course", "4242", "--assignment-id", "12345", "--url", url,
                     "--backoff", "0", "--apply"]) == 0
    finally:
        fake.stop()
    assert main(["report", "--db", db, "--out", str(tmp_path / "report.html")]) == 0
    capsys.readouterr()

    student_facing = [klms.read_text(encoding="utf-8-sig")]
    files = sorted(os.listdir(tmp_path / "fb"))
    assert {"u1001.md", "u1001.html", "u1002.md", "u1002.html"} <= set(files)
    student_facing += [(tmp_path / "fb" / f).read_text(encoding="utf-8") for f in files]
    comments = [c["comment"] for s in fake.subs.values() for c in s["submission_comments"]]
    assert len(comments) == 4                  # 1001, 1002 (graded), 1003 (TA's score), 1004 (excused)
    student_facing += comments + [str(r["form"]) for r in fake.requests]
    for text in student_facing:
        for secret in secrets:
            assert secret not in text
    # students with nothing graded get one short line, never a list of dashes
    short = {uid: s["submission_comments"][0]["comment"] for uid, s in fake.subs.items() if uid in (1003, 1004)}
    assert all(len(c.splitlines()) <= 3 and "-" * 3 not in c and ": -" not in c for c in short.values())
    assert "excused" in short[1004] and "40" in short[1003]
    # the staff files keep the reasons
    assert REASON in qs.read_text(encoding="utf-8-sig") and MEDICAL in qs.read_text(encoding="utf-8-sig")
    assert MEDICAL in (tmp_path / "report.html").read_text(encoding="utf-8")
