"""``upload`` against tests/canvas_server.py (a loopback stand-in for the Canvas endpoints it uses)."""
import warnings

import pytest

from autograder.record import gradebook
from autograder.publish import upload
from autograder.__main__ import main
from canvas_server import FakeCanvas, Student
from test_gradebook import make_gradebook, nb, result, sha

TOKEN = "7~SeCrEtToKeN0123456789abcdefSECRET"
COURSE, ASSIGNMENT = 4242, 12345


@pytest.fixture
def fake():
    server = FakeCanvas(TOKEN, COURSE, ASSIGNMENT, [
        Student(1001, "80012345", "taro@keio.jp"), Student(1002, "80012346", "hanako@keio.jp", late=True),
        Student(1003), Student(1004), Student(1009)])
    url = server.start()
    server.url = url
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("CANVAS_API_TOKEN", TOKEN)
    conn, _ = make_gradebook(tmp_path, results={sha(nb("taro")): result({"mlp": 3.25}),
                                                sha(nb("hanako")): result({"loss": 0.0}), sha(nb("fuji")): None})
    gradebook.add_override(conn, "1004", question=None, score=None, excused=True, reason="medical", by="ta")
    return tmp_path / "gradebook.db"


def run_upload(db, fake, capsys, *extra):
    code = main(["upload", "--db", str(db), "--course", str(COURSE), "--assignment", str(ASSIGNMENT),
                 "--url", fake.url, "--backoff", "0", *extra])
    out = capsys.readouterr()
    assert TOKEN not in out.out and TOKEN not in out.err and TOKEN[-8:] not in out.out + out.err
    return code, out.out, out.err


def test_dry_run_changes_nothing(db, fake, capsys):
    code, out, _ = run_upload(db, fake, capsys)
    assert code == 0
    assert fake.puts() == []
    assert all(s["score"] is None and not s["submission_comments"] for s in fake.subs.values())
    assert "(dry run) would update 1001" in out and "grade - -> 73.25" in out
    assert "would change 3" in out and "--apply" in out


def test_apply_sets_grades_and_rerun_is_idempotent(db, fake, capsys):
    code, out, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert fake.subs[1001]["score"] == 73.25 and fake.subs[1002]["score"] == 70.0
    assert fake.subs[1004]["excused"] is True
    assert fake.subs[1003]["score"] is None and fake.subs[1009]["score"] is None   # ambiguous, pending
    assert len(fake.subs[1001]["submission_comments"]) == 1
    assert "73.25" in fake.subs[1001]["submission_comments"][0]["comment"]
    puts = fake.puts()
    assert len(puts) == 3
    assert puts[0]["form"]["submission[posted_grade]"] == ["73.25"]
    assert "comment[text_comment]" in puts[0]["form"]
    assert fake.requests[2]["query"] == {"include[]": ["submission_comments"]}
    # the same upload again: nothing to send
    code, out, _ = run_upload(db, fake, capsys, "--apply")
    assert code == 0 and len(fake.puts()) == 3 and "changed 0, already up to date 3" in out
    assert all(len(s["submission_comments"]) <= 1 for s in fake.subs.values())
    conn = gradebook.connect(db, create=False)
    assert conn.execute("SELECT count(*) FROM audit WHERE action='upload'").fetchone()[0] == 3
    assert not any(TOKEN in r[0] for r in conn.execute("SELECT detail FROM audit"))


def test_changed_grade_is_sent_and_existing_comment_is_not_repeated(db, fake, capsys):
    run_upload(db, fake, capsys, "--apply")
    conn = gradebook.connect(db, create=False)
    fake.subs[1001]["score"] = fake.subs[1001]["entered_score"] = 10.0    # someone typed over it in K-LMS
    code, out, _ = run_upload(db, fake, capsys, "--apply")
    assert code == 0 and "grade 10.0 -> 73.25" in out
    last = fake.puts()[-1]["form"]
    assert last["submission[posted_grade]"] == ["73.25"] and "comment[text_comment]" not in last
    assert len(fake.subs[1001]["submission_comments"]) == 1
    conn.close()


def test_klms_late_policy_does_not_cause_reposting(db, fake, capsys):
    fake.late_deduction = 0.1           # K-LMS deducts on its side: score 63.0, entered_score 70.0
    run_upload(db, fake, capsys, "--apply")
    assert fake.subs[1002]["score"] == 63.0 and fake.subs[1002]["entered_score"] == 70.0
    n = len(fake.puts())
    code, out, _ = run_upload(db, fake, capsys, "--apply")
    assert len(fake.puts()) == n and "already up to date 3" in out


def test_retries_on_429_and_500(db, fake, capsys):
    fake.fail_next = [429, 500]
    code, out, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert "retrying" in err and "RateLimitExceeded" not in out
    assert fake.subs[1001]["score"] == 73.25 and len(fake.puts()) == 3


def test_put_that_failed_after_taking_effect_is_not_repeated(db, fake, capsys):
    fake.fail_after_put = [502]
    code, _, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert "update 1001" in err and "502" in err and "retrying" in err
    assert len(fake.subs[1001]["submission_comments"]) == 1 and len(fake.puts()) == 3


def test_persistent_errors_and_bad_token(db, fake, capsys, monkeypatch):
    fake.fail_next = [500] * 50
    code, _, err = run_upload(db, fake, capsys, "--apply", "--retries", "2")
    assert code == 1 and "error: course" in err
    fake.fail_next = []
    monkeypatch.setenv("CANVAS_API_TOKEN", TOKEN + "x")
    code, _, err = run_upload(db, fake, capsys, "--apply")
    assert code == 1 and "InvalidAccessToken" in err
    monkeypatch.delenv("CANVAS_API_TOKEN")
    code, _, err = run_upload(db, fake, capsys)
    assert code == 2 and "CANVAS_API_TOKEN" in err


def test_refuses_plain_http_to_a_real_host(db, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["upload", "--db", str(db), "--course", "1", "--assignment", "2", "--url", "http://lms.keio.jp"])
    assert code == 1 and "use https" in capsys.readouterr().err


def test_summary_without_feedback_module(db, monkeypatch):
    conn = gradebook.connect(db, create=False)
    g = next(g for g in gradebook.grades(conn) if g.student_key == "1001")
    text = upload.summary_text(g)
    assert "mlp: 3.25 / 10.0" in text and "Total: 73.25 / 80.0" in text and "Status: ok" in text


def test_changed_score_edits_the_earlier_comment(db, fake, capsys):
    """After an override the student's comment from this tool is edited, not joined by a second one."""
    run_upload(db, fake, capsys, "--apply")
    [first] = fake.subs[1001]["submission_comments"]
    first_text = first["comment"]
    assert "73.25" in first_text and upload.MARKER in first_text
    fake.subs[1001]["submission_comments"].insert(0, {"id": 999, "author_id": 7, "comment": "good work!"})
    conn = gradebook.connect(db, create=False)
    gradebook.add_override(conn, "1001", question="mlp", score=10.0, excused=False, reason="regrade", by="ta")
    code, out, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert "grade 73.25 -> 80.0, replace its earlier comment" in out
    comments = fake.subs[1001]["submission_comments"]
    assert [c["id"] for c in comments] == [999, first["id"]]           # no second comment from us
    assert "Final score: 80 / 80" in comments[1]["comment"] and comments[1]["comment"] != first_text
    assert comments[0]["comment"] == "good work!"                       # a person's comment is never touched
    edits = [r for r in fake.requests if r["method"] == "PUT" and "/comments/" in r["path"]]
    assert len(edits) == 1 and edits[0]["path"].endswith(f"/submissions/1001/comments/{first['id']}")
    n = len(fake.requests)
    code, out, _ = run_upload(db, fake, capsys, "--apply")              # idempotent
    assert code == 0 and "changed 0" in out and len(fake.puts()) == len([r for r in fake.requests[:n] if r["method"] == "PUT"])


def test_stalled_klms_times_out_and_the_rest_goes_on(db, fake, capsys):
    """A K-LMS that stops answering: each request gives up after --timeout, retries, then a clear count."""
    import time
    fake.stall_next = [5.0, 5.0]              # the first two requests (course) stall: retried, then fine
    start = time.monotonic()
    code, out, err = run_upload(db, fake, capsys, "--apply", "--timeout", "2", "1", "--retries", "4")
    assert code == 0, err
    assert "ReadTimeout" in err and "retrying" in err
    assert time.monotonic() - start < 9.0            # less than waiting out the two stalls (10 s)
    assert fake.subs[1001]["score"] == 73.25
    fake.stall_all = 5.0                      # now it never answers
    start = time.monotonic()
    fake.subs[1002]["score"] = fake.subs[1002]["entered_score"] = None
    code, out, err = run_upload(db, fake, capsys, "--apply", "--timeout", "1", "0.5", "--retries", "2")
    assert code == 1 and "gave up after 2 tries" in err
    assert time.monotonic() - start < 4.9            # less than one stall: nothing waited for an answer


def test_dropped_student_is_listed_and_the_rest_goes_on(db, fake, capsys):
    del fake.subs[1001]                       # 1001 dropped the course: K-LMS answers 404
    code, out, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert "not in K-LMS 1" in out and "not in K-LMS (dropped the course?), nothing sent: 1001" in err
    assert fake.subs[1002]["score"] == 70.0 and fake.subs[1004]["excused"] is True


def test_upload_never_clears_a_grade(db, fake, capsys):
    """Students with no score in the gradebook are never sent anything, whatever K-LMS holds for them."""
    fake.subs[1003].update(score=55.0, entered_score=55.0)           # ambiguous here, graded by hand in K-LMS
    fake.subs[1009].update(score=60.0, entered_score=60.0)           # pending here
    run_upload(db, fake, capsys, "--apply")
    assert fake.subs[1003]["score"] == 55.0 and fake.subs[1009]["score"] == 60.0
    assert not [r for r in fake.puts() if "/1003" in r["path"] or "/1009" in r["path"]]


def test_one_upload_or_batch_at_a_time_per_gradebook(db, fake, capsys, monkeypatch):
    """Two TAs' uploads at once would each find no comment and each post one; an upload during a batch would
    send half a class's new results. --apply waits for nobody: it refuses; a dry run is always allowed."""
    import os

    from autograder.batch import processes

    held = processes.lock(db)                           # a batch (or another upload --apply) is running
    try:
        code, _, err = run_upload(db, fake, capsys, "--apply")
        assert code == 1 and "another batch or upload --apply is running" in err
        assert fake.puts() == [] and all(not s["submission_comments"] for s in fake.subs.values())
        code, out, _ = run_upload(db, fake, capsys)     # the dry run reads only
        assert code == 0 and "(dry run) would update 1001" in out
    finally:
        os.close(held)
    seen = []
    real = upload.upload

    def while_uploading(*args, **kwargs):               # a second writer, while this upload runs
        try:
            os.close(processes.lock(db))
            seen.append("free")
        except processes.Locked:
            seen.append("held")
        return real(*args, **kwargs)

    monkeypatch.setattr(upload, "upload", while_uploading)
    code, _, err = run_upload(db, fake, capsys, "--apply")
    assert code == 0, err
    assert seen == ["held"] and fake.subs[1001]["score"] == 73.25
    os.close(processes.lock(db))                        # released when it ended
