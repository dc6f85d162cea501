"""``batch`` end to end with the real grader (AUTOGRADER_MNIST_PROFILE=small): the Makefile's demo commands on
examples/, a batch killed with SIGKILL and resumed, a grading worker killed mid-notebook, and the
process-tree hygiene that keeps sandbox children from outliving the batch.

The example zip (full notebooks, about 30 s each) is batch-graded once, by the ``demo`` fixture. The tests that
need more batches of real notebooks (grades equal to grade_notebook's alone, kill -9 and resume, a dead
worker) use ``lean`` notebooks of the same students instead: the NumPy part of the solution with a different
mistake each (``notebook_variants.lean``: about 5 s a grade)."""
import csv
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import notebook_variants as nv
from autograder.batch import processes
from autograder.ingest import roster
from autograder.ingest import submissions as ingest
from autograder.ingest.canvas_zip import Attachment, write_submissions_zip
from autograder.record import gradebook
from autograder.publish.csvfmt import format_score
from autograder.score.late import late_factor
from autograder.layout import EXAMPLES_DIR, ROOT

ENV = {**os.environ, "AUTOGRADER_MNIST_PROFILE": "small"}
ZIP = EXAMPLES_DIR / "submissions.zip"
ROSTER = EXAMPLES_DIR / "roster.csv"


def autograder(*args, **kwargs):
    return [sys.executable, "-m", "autograder", *map(str, args)]


def batch_cmd(db, *extra, zip_path=ZIP):
    return autograder("batch", zip_path, "--roster", ROSTER, "--db", db, *extra)


def export(db, out: Path) -> tuple[bytes, bytes]:
    """The Makefile's export command; returns (K-LMS CSV, questions CSV) bytes."""
    done = subprocess.run(autograder("export", "--db", db, "--canvas-csv", out / "klms_gradebook.csv",
                                     "--questions-csv", out / "questions.csv", "--assignment-id", "12345",
                                     "--title", "Lecture 3 assignment"),
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return (out / "klms_gradebook.csv").read_bytes(), (out / "questions.csv").read_bytes()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def wait_gone(pids, seconds=20.0) -> set[int]:
    deadline = time.monotonic() + seconds
    left = {p for p in pids if alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {p for p in left if alive(p)}
    return left


def count(db, sql) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo`'s batch and export commands, run once for the module."""
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run(batch_cmd(out / "gradebook.db"), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout
    klms, questions = export(out / "gradebook.db", out)
    return out, done, klms, questions


def test_demo_commands_grade_every_student(demo):
    out, done, klms, questions = demo
    people, _ = roster.read_roster(ROSTER)
    conn = gradebook.connect(out / "gradebook.db", create=False)
    grades = {g.student_key: g for g in gradebook.grades(conn)}
    # no grader fault (such a student would be left out of the K-LMS file below): say which and why
    assert {k: g.message for k, g in grades.items() if g.status == "sandbox_error"} == {}
    rows = list(csv.reader(io.StringIO(klms.decode("utf-8-sig"), newline="")))
    assert rows[0][-1] == "Lecture 3 assignment (12345)" and rows[1][0] == "Points Possible"
    # every roster student with a score, in order; 1009 submitted nothing: left out, K-LMS keeps its value
    assert [r[1] for r in rows[2:]] == [p.user_id for p in people if p.user_id != "1009"]
    klms_value = {r[1]: r[5] for r in rows[2:]}
    assert "1009" not in klms_value and all(v for v in klms_value.values())
    # not a terminal: one plain progress line per finished submission, with an ETA
    progress = [line for line in done.stderr.splitlines() if line.startswith("[") and "ETA" in line]
    graded = int(re.search(r"grading (\d+), ", done.stderr).group(1))
    assert graded >= 1 and len(progress) == graded
    assert progress[-1].startswith(f"[{graded}/{graded}]")
    names = {p.user_id: p.name for p in people}
    assert any(f"{names['1001']} (1001): ok" in line for line in progress)       # by name and id
    qrows = {r["ID"]: r for r in csv.DictReader(io.StringIO(questions.decode("utf-8-sig"), newline=""))}
    assert qrows["1009"]["status"] == "missing"
    assert "memo.txt" in done.stdout and "other_notebooks" in qrows["1007"]["flags"]
    assert qrows["1003"]["late"] == "late" and qrows["1004"]["file"] == "lec03-1.ipynb"

    # each exported score is the graded total with the late policy applied; what each example is for
    assert {k for k, g in grades.items() if g.result} == {p.user_id for p in people} - {"1009"}
    for key, value in klms_value.items():
        g = grades[key]
        assert value == format_score(g.graded_total * late_factor(g.late)), key
        assert qrows[key]["final"] == value
    assert grades["1001"].graded_total == 80.0                  # the solution itself
    assert grades["1006"].status == "timeout"                   # mae never returns on an odd number of samples
    assert grades["1002"].questions["gradient"] == 0.0
    metrics = grades["1002"].result["questions"]["metrics"]
    assert metrics["score"] < metrics["max_score"]


def _lean(nb: dict, key: str) -> bytes:
    """A lean notebook (the NumPy part) of student ``key``: its own bytes even without a mistake."""
    nb = nv.lean(nb)
    nb["cells"].append(nv.markdown_cell(f"提出者 / submitted by {key}"))
    return nv.dumps(nb)


def lean_notebooks() -> dict[str, tuple[str, bytes]]:
    """Student -> (file name, lean notebook): the solution, mistakes, a crashing cell; all different."""
    solution = nv.solution()
    return {
        "1001": ("lec03.ipynb", _lean(solution, "1001")),
        "1002": ("lec03.ipynb", _lean(nv.blank(nv.solution(), "gradient"), "1002")),
        "1003": ("lec03.ipynb", _lean(solution, "1003")),                       # handed in late
        "1004": ("lec03-1.ipynb", _lean(nv.blank(nv.solution(), "mae"), "1004")),
        "1005": ("lec03.ipynb", _lean(nv.append_cells(nv.solution(), "print(undefined_name)"), "1005")),
        "1006": ("lec03.ipynb", _lean(nv.blank(nv.solution(), "loss"), "1006")),
    }


@pytest.fixture(scope="module")
def lean(tmp_path_factory, grader):
    """A K-LMS zip of lean notebooks of roster students 1001-1006, one uninterrupted batch of it (with the
    export) and each notebook graded alone by grade_notebook."""
    out = tmp_path_factory.mktemp("lean")
    people = {p.user_id: p for p in roster.read_roster(ROSTER)[0]}
    notebooks = lean_notebooks()
    attachments = [Attachment(people[key].name, int(key), 80000 + int(key), filename, data, late=key == "1003")
                   for key, (filename, data) in notebooks.items()]
    zip_path = out / "lean.zip"
    write_submissions_zip(zip_path, attachments)
    done = subprocess.run(batch_cmd(out / "gradebook.db", zip_path=zip_path), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout
    klms, questions = export(out / "gradebook.db", out)
    alone = grader.many({key: data for key, (_, data) in notebooks.items()})
    return zip_path, out, klms, questions, alone


def test_batch_grades_as_grade_notebook_alone(lean):
    """Each score the batch records equals what grade_notebook gives that notebook alone."""
    zip_path, out, klms, questions, alone = lean
    rows = list(csv.reader(io.StringIO(klms.decode("utf-8-sig"), newline="")))
    klms_value = {r[1]: r[5] for r in rows[2:]}
    qrows = {r["ID"]: r for r in csv.DictReader(io.StringIO(questions.decode("utf-8-sig"), newline=""))}
    conn = gradebook.connect(out / "gradebook.db", create=False)
    grades = {g.student_key: g for g in gradebook.grades(conn)}
    assert set(klms_value) == set(alone) == {k for k, g in grades.items() if g.result}
    for key, result in alone.items():
        g = grades[key]
        assert g.status == result["status"], key
        assert g.graded_total == pytest.approx(result["total"]), key
        assert g.questions == pytest.approx({q: v["score"] for q, v in result["questions"].items()}), key
        assert klms_value[key] == format_score(result["total"] * late_factor(g.late))
        assert qrows[key]["final"] == klms_value[key]
    assert qrows["1003"]["late"] == "late" and qrows["1004"]["file"] == "lec03-1.ipynb"
    # the lean notebooks differ as they should: the batch did not grade one student's file for another
    assert alone["1001"]["total"] == alone["1003"]["total"] > alone["1002"]["total"]
    assert alone["1002"]["questions"]["gradient"]["score"] == 0.0
    assert alone["1004"]["questions"]["metrics"]["score"] < alone["1004"]["questions"]["metrics"]["max_score"]
    assert alone["1006"]["questions"]["loss"]["score"] < alone["1006"]["questions"]["loss"]["max_score"]


def test_kill_minus_nine_and_resume(lean, tmp_path):
    zip_path, _, klms_whole, questions_whole, _ = lean
    n = len(lean_notebooks())
    db = tmp_path / "gradebook.db"
    log = open(tmp_path / "batch.log", "w")
    proc = subprocess.Popen(batch_cmd(db, "--workers", "2", zip_path=zip_path), cwd=ROOT, env=ENV, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if db.exists() and count(db, "SELECT count(*) FROM results") >= 2:
                break
            assert proc.poll() is None, (tmp_path / "batch.log").read_text()
        tree = processes.descendants(proc.pid)
        graded_before = count(db, "SELECT count(*) FROM results")
        assert 2 <= graded_before < n and tree, "the batch should be part-way, with workers and sandboxes"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert wait_gone(tree) == set(), "grading processes outlived the killed batch"

    done = subprocess.run(batch_cmd(db, "--workers", "2", zip_path=zip_path), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    graded_after = count(db, "SELECT count(*) FROM results")
    assert graded_after == n and f"grading {n - graded_before}," in done.stderr.replace("\n", " ")
    # every notebook graded exactly once over the two runs
    assert count(db, "SELECT count(*) FROM audit WHERE action='graded'") == n
    assert count(db, "SELECT count(DISTINCT json_extract(detail, '$.sha256')) FROM audit WHERE action='graded'") == n
    assert count(db, "SELECT count(*) FROM batches WHERE state='interrupted'") == 1    # the killed one
    assert count(db, "SELECT count(*) FROM batches WHERE state='finished'") == 1
    assert "an earlier batch stopped part-way" in done.stderr
    klms, questions = export(db, tmp_path)
    assert klms == klms_whole
    assert questions == questions_whole

    # a third run grades nothing
    again = subprocess.run(batch_cmd(db, zip_path=zip_path), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"grading 0, {n} already graded" in again.stderr.replace("\n", " ")
    assert count(db, "SELECT count(*) FROM audit WHERE action='graded'") == n


def test_a_dead_worker_does_not_stop_the_batch(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    notebooks = lean_notebooks()
    for key, source in (("1001", "1001"), ("1008", "1003")):     # two lean notebooks, graded one at a time
        (folder / f"student_{key}_{70000 + int(key)}_lec03.ipynb").write_bytes(notebooks[source][1])
    (folder / "broken_1010_1_lec03.ipynb").write_text("{ not json")
    db = tmp_path / "gradebook.db"
    proc = subprocess.Popen(autograder("batch", folder, "--db", db, "--workers", "1"), cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        victim = _worker_with_sandbox(proc.pid)        # a worker with a sandbox child
        assert victim is not None
        its_children = processes.descendants(victim)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "a grading worker died" in err
    assert wait_gone(its_children) == set()
    conn = gradebook.connect(db, create=False)
    statuses = {g.student_key: g.status for g in gradebook.grades(conn)}
    assert statuses == {"1001": "ok", "1008": "ok", "1010": "invalid"}


def _worker_with_sandbox(batch_pid: int, seconds: float = 300) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for pid in processes.descendants(batch_pid):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes() if alive(pid) else b""
            if b"spawn_main" in cmd and processes.descendants(pid):
                return pid
    return None


def test_sigterm_stops_cleanly_and_one_batch_at_a_time(tmp_path):
    got = ingest.ingest(ZIP, tmp_path / "x")
    folder = tmp_path / "subs"
    folder.mkdir()
    nb = next(nb for nb in got.notebooks if nb.student_key == "1001")
    (folder / nb.entry_name).write_bytes(nb.path.read_bytes())
    db = tmp_path / "gradebook.db"
    proc = subprocess.Popen(autograder("batch", folder, "--db", db), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert _worker_with_sandbox(proc.pid) is not None
        second = subprocess.run(autograder("batch", folder, "--db", db), cwd=ROOT, env=ENV, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 1 and "another batch or upload --apply is running" in second.stderr
        tree = processes.descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err
    assert wait_gone(tree) == set()
    assert count(db, "SELECT state FROM batches") == "interrupted"
    assert count(db, "SELECT count(*) FROM results") == 0


WORKER_SCRIPT = textwrap.dedent("""
    import concurrent.futures as cf, multiprocessing, os, subprocess, sys, time
    from autograder.batch import processes

    def job(_):
        subprocess.Popen(["sleep", "300"])          # stands for a sandbox child (no PDEATHSIG of its own)
        time.sleep(300)

    if __name__ == "__main__":
        pool = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=processes.init_worker, initargs=(os.getpid(),))
        futures = [pool.submit(job, i) for i in range(2)]
        print("ready", flush=True)
        time.sleep(300)
""")


def test_workers_and_their_children_die_with_the_batch(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(WORKER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tree = processes.descendants(proc.pid)
            sleeps = [p for p in tree if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep\0")]
            if len(sleeps) == 2:
                break
            time.sleep(0.1)
        assert len(sleeps) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_gone(tree, 10) == set()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_kill_tree(tmp_path):
    proc = subprocess.Popen(["bash", "-c", "sleep 300 & (sleep 300 & sleep 300) & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(processes.descendants(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = processes.descendants(proc.pid)
        assert len(tree) >= 3
        processes.kill_tree(proc.pid)
        assert wait_gone(tree, 5) == set()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
