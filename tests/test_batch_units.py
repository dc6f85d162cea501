"""``batch`` without grading: command-line checks, stored results that cannot be stored, the TA's table,
stale folders of a killed batch. (tests/test_batch.py grades real notebooks.)"""
import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from autograder.batch import driver as batch
from autograder.batch import processes
from autograder.batch.executors import failed_result
from autograder.record import gradebook
from autograder.ingest import submissions as ingest
from autograder.__main__ import main
from autograder.ingest.canvas_zip import Attachment, write_submissions_zip
from test_gradebook import ATTACHMENTS, VERSION, make_gradebook, nb, result, sha


def test_lone_surrogates_are_stored_as_valid_utf8(tmp_path):
    conn = gradebook.connect(tmp_path / "g.db")
    res = result(status="crashed", message="debug: \ud83d")
    res["cells"] = [{"index": 0, "status": "error", "error": {"ename": "RuntimeError", "evalue": "x\udcff"}}]
    res["questions"]["loss"]["checks"][0]["message"] = "bad \ud800"
    gradebook.record_result(conn, "a" * 64, VERSION, res, None, "ta")
    row = conn.execute("SELECT message, result_json, questions FROM results").fetchone()
    assert row["message"] == "debug: \ufffd"
    assert "\\ud83d" not in row["result_json"] and "x\ufffd" in row["result_json"]
    assert "bad \ufffd" in row["questions"]


def test_a_result_that_cannot_be_stored_is_a_grader_error_and_the_batch_goes_on(tmp_path, monkeypatch):
    conn = gradebook.connect(tmp_path / "g.db")
    real = gradebook.record_result
    calls = []

    def flaky(conn_, sha_, version, res, batch_id, by):
        calls.append(res["status"])
        if len(calls) == 1:
            raise TypeError("a grader bug: this result holds something SQLite cannot store")
        return real(conn_, sha_, version, res, batch_id, by)

    monkeypatch.setattr(gradebook, "record_result", flaky)
    err = Console(file=io.StringIO(), width=200)
    stored = batch.record_safely(conn, "b" * 64, VERSION, result(), None, "ta", err)
    assert stored["status"] == "sandbox_error" and "could not be stored" in stored["message"]
    assert calls == ["ok", "sandbox_error"]
    row = conn.execute("SELECT status, message FROM results").fetchone()
    assert row["status"] == "sandbox_error" and "grader error" in row["message"]
    assert not gradebook.has_result(conn, "b" * 64, VERSION)          # the next batch grades it again
    assert "recorded as a grader error" in err.file.getvalue()
    # a real result that cannot be serialised (an object where numbers belong): a grader error, recorded
    monkeypatch.setattr(gradebook, "record_result", real)
    weird = result()
    weird["measurements"] = {"x": object()}
    stored = batch.record_safely(conn, "c" * 64, VERSION, weird, None, "ta", err)
    assert stored["status"] == "sandbox_error" and "TypeError" in stored["message"]
    assert conn.execute("SELECT status FROM results WHERE sha256=?", ("c" * 64,)).fetchone()[0] == "sandbox_error"


class _Returns:
    """An executor that hands back given results, as a pool whose workers graded with other files would."""

    def __init__(self, results: dict):
        self.results = results

    def grade(self, pending):
        yield from ((sha, self.results[sha]) for sha in pending)


def test_a_result_from_other_grader_files_or_other_bytes_is_a_grader_error_graded_again(tmp_path):
    conn = gradebook.connect(tmp_path / "g.db")
    good, moved, changed, odd, unread, fault, killer = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "f" * 64, "0" * 64,
                                                        "1" * 64)
    results = {good: {**result(), "grader_version": VERSION, "submission_sha256": good},
               moved: {**result(), "grader_version": "other-grader", "submission_sha256": moved},
               changed: {**result(), "grader_version": VERSION, "submission_sha256": "e" * 64},
               odd: ["not", "a", "result"],
               # judged without its bytes being read (it grew past the size limit after the batch read it)
               unread: {**result(status="invalid"), "grader_version": VERSION, "submission_sha256": None},
               fault: {**result(status="sandbox_error", message="no sandbox here"), "submission_sha256": None},
               killer: failed_result("crashed: it killed every Dask worker it was tried on", status="crashed")}
    todo = {s: tmp_path / f"{s[:4]}.ipynb" for s in results}
    err = Console(file=io.StringIO(), width=200)
    assert batch._grade_all(conn, todo, VERSION, None, "ta", _Returns(results), err) == 7
    rows = {r["sha256"]: r for r in conn.execute("SELECT sha256, status, message FROM results")}
    assert rows[good]["status"] == "ok" and gradebook.has_result(conn, good, VERSION)
    assert "grader's files changed while this batch ran" in rows[moved]["message"]
    assert "other-grader" in rows[moved]["message"]
    assert "file changed after the batch read it" in rows[changed]["message"]
    assert "returned list" in rows[odd]["message"]
    assert "could not be matched to what the batch read" in rows[unread]["message"]
    assert rows[fault]["message"] == "no sandbox here"          # a grader fault is kept as it is
    assert rows[killer]["status"] == "crashed"                  # and so is the executor's own verdict
    for sha_ in (moved, changed, odd, unread, fault):           # none is stored as a score; the next batch grades them again
        assert rows[sha_]["status"] == "sandbox_error" and not gradebook.has_result(conn, sha_, VERSION)


def test_command_line_errors_create_no_gradebook(tmp_path, capsys):
    db = tmp_path / "g.db"
    assert main(["batch", str(tmp_path / "nope.zip"), "--db", str(db)]) == 1
    assert "no such file" in capsys.readouterr().err and not db.exists()
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["batch", str(tmp_path / "in"), "--db", str(db), "--pick", "1003=lec03.ipynb"])
    assert info.value.code == 2 and "STUDENT=ATTACHMENT_ID" in capsys.readouterr().err and not db.exists()
    (tmp_path / "roster.csv").write_text("name,number\nTaro,1\n", encoding="utf-8")
    assert main(["batch", str(tmp_path / "in"), "--db", str(db), "--roster", str(tmp_path / "roster.csv")]) == 1
    assert "found ['name', 'number']" in capsys.readouterr().err and not db.exists()
    not_db = tmp_path / "notes.txt"
    not_db.write_text("my notes\n")
    for cmd in (["export", "--db", str(not_db), "--canvas-csv", str(tmp_path / "k.csv"), "--assignment-id", "1"],
                ["feedback", "--db", str(not_db), "--out", str(tmp_path / "fb")],
                ["override", "--db", str(not_db), "1001", "5", "--reason", "x"]):
        assert main(cmd) == 1
        assert "is not a gradebook" in capsys.readouterr().err
    assert not_db.read_text() == "my notes\n"


def test_pick_must_name_one_of_the_students_files(tmp_path, capsys):
    write_submissions_zip(tmp_path / "in.zip", ATTACHMENTS)
    db = str(tmp_path / "g.db")
    assert main(["batch", str(tmp_path / "in.zip"), "--db", db, "--pick", "1003=501"]) == 1
    err = capsys.readouterr().err
    assert "--pick 1003=501: not one of that student's notebooks" in err
    assert "503 (lec03.ipynb)" in err and "504 (lec03-1.ipynb)" in err
    conn = gradebook.connect(db, create=False)
    assert gradebook.picks(conn) == {}
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0


def test_ta_table_names_students_and_says_what_to_do(tmp_path):
    attack = Attachment("Outsider, Eve", 3005, 777, "lec03_1002_1_lec03.ipynb", nb("eve"))
    flagged = result()
    flagged["flags"] = [{"kind": "missing_package", "message": "imports seaborn, not installed"}]
    conn, _ = make_gradebook(tmp_path, attachments=ATTACHMENTS + [attack],
                             results={sha(nb("taro")): flagged, sha(nb("fuji")): None,
                                      sha(nb("hanako")): result(status="invalid", message="not JSON")})
    grades = gradebook.grades(conn)
    rows = {r["who"]: r for r in gradebook.triage(grades, conn)}
    assert "missing_package: imports seaborn, not installed" in rows["慶應 太郎 (1001)"]["what"]
    assert rows["三田 花子 (1002)"]["status"] == "invalid" and "late" in rows["三田 花子 (1002)"]["what"]
    assert "--pick" in rows["日吉 一郎 (1003)"]["next"] and "attachment 503" in rows["日吉 一郎 (1003)"]["what"]
    assert rows["矢上 健 (1004)"]["status"] == "missing"
    assert "anon_Qq9Zk" not in rows                      # matched to 1001: not a second person
    assert rows["shonanfuji (1009)"]["status"] == "pending" and "not in the roster" in rows["shonanfuji (1009)"]["next"]
    assert rows["?"]["status"] == "doubtful file" and "3005" in rows["?"]["what"]
    out = Console(file=io.StringIO(), width=250)
    got = ingest.Ingested()
    batch._summary(out, conn, grades, got, 0)
    text = out.file.getvalue()
    assert "for a TA to look at" in text and "慶應 太郎 (1001)" in text and "missing_package" in text
    assert "doubtful file" in text
    students_line = next(line for line in text.splitlines() if "students" in line and "│" in line)
    assert students_line.split("│")[-2].strip() == "6"     # 1001-1004, 1009, anon_x7Ya2 (anon_Qq9Zk is 1001)


def test_stale_work_folders_of_a_killed_batch_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f"{prefix}{dead.pid}-abc" for prefix in processes.STALE_PREFIXES]  # batch, sandbox, task
    live = tmp_path / f"{processes.WORKDIR_PREFIX}{os.getppid()}-def"
    other = tmp_path / "someone-else"
    for d in (*stale, live, other):
        d.mkdir()
        (d / "00001_lec03.ipynb").write_text("{}")
    removed = processes.remove_stale_workdirs(str(tmp_path))
    assert sorted(removed) == sorted(map(str, stale)) and not any(d.exists() for d in stale)
    assert live.exists() and other.exists()
    mine = processes.new_workdir()                      # this batch's own folder is never stale
    try:
        assert os.path.basename(mine).startswith(f"{processes.WORKDIR_PREFIX}{os.getpid()}-")
        assert mine not in processes.remove_stale_workdirs(os.path.dirname(mine)) and os.path.isdir(mine)
    finally:
        os.rmdir(mine)


def test_run_batch_is_the_library_function_and_one_batch_holds_the_gradebook(tmp_path):
    """``driver.run_batch`` without the command line: the lock of a running batch refuses a second one."""
    write_submissions_zip(tmp_path / "in.zip", ATTACHMENTS)
    db = tmp_path / "g.db"
    gradebook.connect(db).close()
    fd = processes.lock(db)
    try:
        with pytest.raises(processes.Locked, match="another batch or upload --apply is running"):
            processes.lock(db)
        out, err = Console(file=io.StringIO(), width=200), Console(file=io.StringIO(), width=200)
        assert batch.run_batch(tmp_path / "in.zip", db=db, workers=1, out=out, err=err) == 1
        assert "another batch or upload --apply is running on" in err.file.getvalue()
    finally:
        os.close(fd)
    os.close(processes.lock(db))                        # released with its descriptor
    err = Console(file=io.StringIO(), width=200)
    assert batch.run_batch(tmp_path / "nope.zip", db=tmp_path / "h.db", out=err, err=err) == 1
    assert "no such file or folder" in err.file.getvalue() and not (tmp_path / "h.db").exists()
