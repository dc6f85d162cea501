"""A second assignment through the same engine: the fixture course ``tests/fixtures/tiny_course/``.

Its assignment ``tiny`` has two questions: ``mean`` (6 points, the numpy function ``weighted_mean``, called
by its hidden test through a stand-in) and ``box`` (4 points, the class ``Box``, reached only through the
probe ``box_areas`` of its ``probes.py``). Everything about it lives in that folder (grader_config.py,
source/tiny/tiny.ipynb, course/tiny/); nothing in the engine names it. ``AUTOGRADER_CONFIG`` points every
command at it, run as a TA would: ``build`` (then ``build --check``), ``grade``, ``batch`` of a K-LMS zip
with a roster, ``export``, ``override``, ``feedback``, ``report`` and ``upload`` (against
tests/canvas_server.py). The class:

    2001 慶應 太郎       the solution                                   10 / 10
    2002 三田 花子       the release as distributed (stubs)              0 / 10
    2003 Hiyoshi Ichiro  weighted_mean divides by len(x); LATE           4 / 10, final 2 (LATE_FRACTION 0.5)
    2004 Yagami Ken      in the roster, submitted nothing

The build writes into a temporary copy of the fixture; nothing generated is committed.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder import assignment
from autograder import config as config_loader
from autograder.check import runner
from autograder.ingest.canvas_zip import Attachment, write_submissions_zip

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tiny_course"
PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(PYTHON) if PYTHON.exists() else sys.executable
TIMEOUT = 300

ASSIGNMENT_ID, TITLE = 777, "Tiny assignment"
PEOPLE = [  # (K-LMS "Student", sortable name, user id)
    ("慶應 太郎", "慶應, 太郎", 2001), ("三田 花子", "三田, 花子", 2002),
    ("Hiyoshi, Ichiro", "Hiyoshi, Ichiro", 2003), ("Yagami, Ken", "Yagami, Ken", 2004),
]
SOLVED = "return float(np.sum(w * x) / np.sum(w))"
BY_COUNT = "return float(np.sum(w * x) / len(x))"     # the classic mistake: divide by N, not by Σw
LEC03_WORDS = ("正規方程式", "normal equation", "minibatch", "MNIST", "MLP", "lec03", "Lecture 3", "第3回")
TOKEN = "7~TinyCourseToken0123456789abcdef"


def cli(course: Path, *args, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m autograder ARGS`` in the tiny course, as a TA runs it there."""
    done = subprocess.run([PYTHON, "-m", "autograder", *map(str, args)], cwd=course, env=env or course_env(course),
                          capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert done.returncode == 0, f"autograder {args[0]} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def course_env(course: Path) -> dict:
    # conftest fixed AUTOGRADER_SECRET and AUTOGRADER_SECRET_FILE; the subprocesses inherit them
    return {**os.environ, "AUTOGRADER_CONFIG": str(course / "grader_config.py"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the fixture course, built (release, solution, reference.py)."""
    root = tmp_path_factory.mktemp("tiny") / "course"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    built = cli(root, "build")
    assert "wrote assignments/tiny/tiny.ipynb" in built.stdout, built.stdout
    return root


@pytest.fixture(scope="module")
def grade(course):
    """``grade(*paths)``: ``autograder grade --json`` of each notebook, side by side; their results.

    (Named ``grade`` like conftest's fixture, which this one stands in for here: conftest marks the tests
    that use it ``sandbox``.)"""
    def run(*paths):
        procs = [subprocess.Popen([PYTHON, "-m", "autograder", "grade", "--json", str(p)], cwd=course,
                                  env=course_env(course), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for p in paths]
        try:
            results = []
            for proc in procs:
                out, err = proc.communicate(timeout=TIMEOUT)
                assert proc.returncode == 0, err
                results.append(json.loads(out))
            return results
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return run


def mistake(solution: bytes) -> bytes:
    text = solution.decode("utf-8")
    assert text.count(SOLVED) == 1, "the solution no longer holds the line this test edits"
    return text.replace(SOLVED, BY_COUNT).encode("utf-8")


def roster_csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{TITLE} ({ASSIGNMENT_ID})",
                "Current Score", "Unposted Current Score", "Final Score", "Unposted Final Score"])
    w.writerow(["    Points Possible", "", "", "", "", "10.00", "(read only)", "(read only)", "(read only)",
                "(read only)"])
    for display, _sortable, uid in PEOPLE:
        w.writerow([display, uid, f"8260{uid}", f"s{uid}@keio.jp", "機械学習基礎 月2", "", "", "", "", ""])
    return "\ufeff".encode("utf-8") + buf.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def tiny(course, grade) -> SimpleNamespace:
    """The built course, the grades of its solution and release, and a K-LMS zip of 3 notebooks and a roster."""
    task = SimpleNamespace(root=course, solution=course / "solutions/tiny/tiny.ipynb",
                           release=course / "assignments/tiny/tiny.ipynb")
    task.solution_result, task.release_result = grade(task.solution, task.release)
    solution = task.solution.read_bytes()
    files = {2001: ("tiny.ipynb", solution), 2002: ("tiny.ipynb", task.release.read_bytes()),
             2003: ("tiny-1.ipynb", mistake(solution))}
    task.zip = course / "submissions.zip"
    write_submissions_zip(task.zip, [Attachment(sortable, uid, 80000 + uid, *files[uid], late=uid == 2003)
                                     for _display, sortable, uid in PEOPLE if uid in files])
    task.roster = course / "roster.csv"
    task.roster.write_bytes(roster_csv())
    return task


@pytest.fixture(scope="module")
def batch(tiny) -> SimpleNamespace:
    """``batch`` of the zip with the roster: the gradebook that export, feedback, report and upload read."""
    db = tiny.root / "out" / "gradebook.db"
    done = cli(tiny.root, "batch", tiny.zip, "--roster", tiny.roster, "--db", db, "--workers", "2", "--by", "ta")
    return SimpleNamespace(**vars(tiny), db=db, batch=done)


def klms_scores(path: Path) -> tuple[str, dict[str, str]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][-1] == f"{TITLE} ({ASSIGNMENT_ID})"
    assert rows[1][0].strip() == "Points Possible"
    return rows[1][-1], {row[1]: row[-1] for row in rows[2:]}


# --- fast: the assignment as data ----------------------------------------------------------------------------

@pytest.mark.unit
def test_fixture_loads_as_an_assignment():
    task = assignment.load(FIXTURE / "course" / "tiny", FIXTURE)
    assert task.id == "tiny" and task.title == ("小さな課題", "Tiny assignment")
    assert [(q.id, q.number, q.title, q.functions) for q in task.questions] == [
        ("mean", 1, "加重平均 / weighted mean", ("weighted_mean",)), ("box", 2, "箱の面積 / box area", ("Box",))]
    assert task.called == ("weighted_mean",) and task.probed == {"Box": "class"}
    assert task.kinds == {"weighted_mean": "function", "Box": "class"}
    assert task.calls == {} and task.oracles(None) == {} and task.datasets == () and task.public_files == {}
    assert task.probes_file == FIXTURE / "course/tiny/probes.py" and task.checks_module is None
    assert task.source_notebook == FIXTURE / "source/tiny/tiny.ipynb"
    assert task.release_notebook == FIXTURE / "assignments/tiny/tiny.ipynb"
    assert task.reference_module == FIXTURE / "solutions/tiny/reference.py"


@pytest.mark.unit
def test_fixture_config_and_hidden_tests_validate():
    from autograder.grade import hidden_test_names

    spec = importlib.util.spec_from_file_location("_tiny_config", FIXTURE / "grader_config.py")
    cfg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cfg)
    config_loader.validate(cfg)
    assert not hasattr(cfg, "MNIST_PROFILE") and not hasattr(cfg, "ACCURACY")
    task = assignment.load(FIXTURE / "course" / "tiny", FIXTURE)
    assert tuple(q.id for q in task.questions) == tuple(cfg.POINTS)
    names = set(hidden_test_names(task))
    assert "mnist" not in names and "band" not in names and {"weighted_mean", "probe"} <= names
    for q in cfg.QUESTIONS:
        loaded = runner.load_question(task.hidden_tests_dir / f"{q}.py")
        runner.validate(q, loaded, runner.parts_of(q, cfg.POINTS[q], cfg.PARTS), names)
        assert (task.public_tests_dir / f"{q}.py").is_file()


def _broken(tmp_path: Path, extra: str) -> Path:
    folder = tmp_path / "course" / "broken"
    folder.mkdir(parents=True)
    text = (FIXTURE / "course/tiny/assignment.py").read_text(encoding="utf-8") + textwrap.dedent(extra)
    (folder / "assignment.py").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.unit
def test_probes_that_are_not_python_are_refused(tmp_path):
    folder = _broken(tmp_path, "")
    (folder / "probes.py").write_text("def probe_box_areas(harness, payload:\n    return []\n", encoding="utf-8")
    with pytest.raises(assignment.AssignmentError, match="probes.py: not valid Python"):
        assignment.load(folder, tmp_path)


@pytest.mark.unit
@pytest.mark.parametrize("extra, says", [
    ('PROBED = {"Box": "widget"}\n', "PROBED['Box'] must be one of function, class, module"),
    ('CALLS = {"weighted_mean": ("median",)}\n', "CALLS names ['median'], which are not graded names"),
    ('CALLS = {"mean": ("weighted_mean",)}\n', "CALLS names ['mean'], which are not graded names"),
    ('QUESTIONS = {"mean": {"title": ("平均", "mean"), "functions": ("average",)}}\n',
     "question mean grades ['average'], which are not graded names"),
    ('QUESTIONS = {}\n', "QUESTIONS is empty"),
    ('ID = "tiny-2"\n', "ID must be a name"),
], ids=["unknown-kind", "calls-unknown-helper", "calls-a-question", "question-grades-unknown", "no-questions",
        "bad-id"])
def test_broken_assignment_is_refused(tmp_path, extra, says):
    folder = _broken(tmp_path, extra)
    with pytest.raises(assignment.AssignmentError) as raised:
        assignment.load(folder, tmp_path)
    assert says in str(raised.value) and str(folder / "assignment.py") in str(raised.value)


# --- every command, in the tiny course -------------------------------------------------------------------------

@pytest.mark.sandbox
def test_build_then_check_is_up_to_date(tiny):
    check = cli(tiny.root, "build", "--check")
    assert "generated files are up to date" in check.stdout
    assert sorted(str(p.relative_to(tiny.root)) for p in (tiny.root / "assignments").rglob("*") if p.is_file()) == [
        "assignments/tiny/tests/box.py", "assignments/tiny/tests/mean.py", "assignments/tiny/tiny.ipynb"]
    reference = (tiny.root / "solutions/tiny/reference.py").read_text(encoding="utf-8")
    assert "def weighted_mean(x, w):" in reference and "class Box" not in reference
    release = tiny.release.read_text(encoding="utf-8")
    assert "raise NotImplementedError()" in release and SOLVED not in release and "BEGIN SOLUTION" not in release
    assert "{{" not in release and "**配点 6 点**" in release and "(10 点 / points)" in release
    # a changed master makes the generated files out of date
    master = tiny.root / "source/tiny/tiny.ipynb"
    saved = master.read_bytes()
    try:
        master.write_bytes(saved.replace("A tiny assignment".encode(), "A small assignment".encode()))
        stale = cli(tiny.root, "build", "--check", check=False)
        assert stale.returncode == 1 and "out of date: assignments/tiny/tiny.ipynb" in stale.stdout
    finally:
        master.write_bytes(saved)


@pytest.mark.sandbox
def test_grade_solution_full_marks_release_zero(tiny):
    sol, rel = tiny.solution_result, tiny.release_result
    assert sol["assignment"] == "tiny" and sol["status"] == "ok" and sol["message"] == "all cells ran"
    assert (sol["total"], sol["max_total"]) == (10.0, 10.0)
    assert {q: v["score"] for q, v in sol["questions"].items()} == {"mean": 6.0, "box": 4.0}
    assert all(c["passed"] for q in sol["questions"].values() for c in q["checks"])
    assert sol["mnist_profile"] is None and "mnist_accuracy" not in sol["measurements"]
    assert (rel["status"], rel["total"], rel["max_total"]) == ("ok", 0.0, 10.0)
    assert {q: v["score"] for q, v in rel["questions"].items()} == {"mean": 0.0, "box": 0.0}
    [mean_check] = rel["questions"]["mean"]["checks"]
    assert "weighted_mean はまだ実装されていません" in mean_check["message"]
    [box_check] = rel["questions"]["box"]["checks"]
    assert box_check["name"] == "box_area" and "Box(w, h).area()" in box_check["message"]
    assert sol["grader_version"] == rel["grader_version"]


@pytest.mark.sandbox
def test_batch_grades_the_zip(batch):
    out = batch.batch.stdout + batch.batch.stderr
    assert "3 notebooks from 3 students" in out and "Traceback" not in out
    rows = _questions(batch.root, batch.db)
    assert {uid: (r["mean"], r["box"], r["total"], r["final"], r["status"], r["late"]) for uid, r in rows.items()} == {
        "2001": ("6.0", "4.0", "10.0", "10.0", "ok", ""),
        "2002": ("0.0", "0.0", "0.0", "0.0", "ok", ""),
        "2003": ("0.0", "4.0", "4.0", "2.0", "ok", "late"),     # LATE_POLICY "fraction", LATE_FRACTION 0.5
        "2004": ("", "", "", "", "missing", ""),
    }
    # the same zip again: everything already graded by this grader_version
    again = cli(batch.root, "batch", batch.zip, "--roster", batch.roster, "--db", batch.db, "--workers", "1")
    assert "grading 0, 3 already graded" in again.stdout + again.stderr


def _export(course: Path, db: Path, name: str, *extra) -> Path:
    path = db.parent / name
    cli(course, "export", "--db", db, "--canvas-csv", path, *extra)
    return path


def _questions(course: Path, db: Path) -> dict[str, dict]:
    path = db.parent / "questions.csv"
    cli(course, "export", "--db", db, "--canvas-csv", db.parent / "unused.csv", "--questions-csv", path)
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    assert rows.fieldnames[5:9] == ["mean", "box", "total", "final"]
    return {row["ID"]: row for row in rows}


@pytest.mark.sandbox
def test_export_and_override(batch, tmp_path):
    db = tmp_path / "gradebook.db"
    shutil.copy(batch.db, db)
    possible, scores = klms_scores(_export(batch.root, db, "klms.csv"))
    assert possible == "10.0"
    assert scores == {"2001": "10.0", "2002": "0.0", "2003": "2.0"}        # 2004: left out (--missing leave)
    _, scores = klms_scores(_export(batch.root, db, "klms_zero.csv", "--missing", "zero"))
    assert scores == {"2001": "10.0", "2002": "0.0", "2003": "2.0", "2004": "0.0"}

    done = cli(batch.root, "override", "--db", db, "2002", "box", "3", "--reason", "drew the box on paper",
               "--by", "ta")
    assert "final score now 3.0" in done.stdout
    cli(batch.root, "override", "--db", db, "2004", "--excuse", "--reason", "medical", "--by", "ta")
    _, scores = klms_scores(_export(batch.root, db, "klms_after.csv"))
    assert scores == {"2001": "10.0", "2002": "3.0", "2003": "2.0", "2004": "EX"}
    rows = _questions(batch.root, db)
    assert (rows["2002"]["box"], rows["2002"]["final"]) == ("3.0", "3.0")
    refused = cli(batch.root, "override", "--db", db, "2002", "box", "5", "--reason", "too many", check=False)
    assert refused.returncode == 1 and "score must lie in [0, 4]" in refused.stderr   # box: 4 points here
    refused = cli(batch.root, "override", "--db", db, "2002", "loss", "1", "--reason", "lec03", check=False)
    assert refused.returncode == 1 and "unknown question 'loss'; questions: mean, box" in refused.stderr


@pytest.mark.sandbox
def test_feedback_names_the_tiny_questions(batch, tmp_path):
    done = cli(batch.root, "feedback", "--db", batch.db, "--out", tmp_path / "feedback")
    assert "3 graded submission" in done.stdout
    docs = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "feedback").iterdir()}
    assert sorted(docs) == ["u2001.html", "u2001.md", "u2002.html", "u2002.md", "u2003.html", "u2003.md"]
    for name, text in docs.items():
        assert "小さな課題" in text and "加重平均 / weighted mean" in text and "箱の面積 / box area" in text, name
        assert not [w for w in LEC03_WORDS if w in text], (name, [w for w in LEC03_WORDS if w in text])
    assert "10 / 10" in docs["u2001.md"]
    assert "4 / 10" in docs["u2003.md"] and "2 / 10" in docs["u2003.md"]
    assert "重みの和ではなく要素数で割っています" in docs["u2003.md"]


@pytest.mark.sandbox
def test_report_has_no_mnist_section(batch, tmp_path):
    out = tmp_path / "report.html"
    done = cli(batch.root, "report", "--db", batch.db, "--out", out)
    assert "3 graded, 1 missing" in done.stdout
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html
    assert "MNIST" not in html and "accuracy" not in html.lower()
    assert "小さな課題" in html and "Tiny assignment" in html
    assert not [w for w in LEC03_WORDS if w in html], [w for w in LEC03_WORDS if w in html]


@pytest.mark.sandbox
def test_upload_to_canvas(batch, tmp_path):
    from canvas_server import FakeCanvas, Student

    db = tmp_path / "gradebook.db"
    shutil.copy(batch.db, db)
    cli(batch.root, "override", "--db", db, "2004", "--excuse", "--reason", "medical", "--by", "ta")
    fake = FakeCanvas(TOKEN, 4343, ASSIGNMENT_ID, [Student(uid, f"8260{uid}", f"s{uid}@keio.jp")
                                                   for _d, _s, uid in PEOPLE], points_possible=10.0)
    url = fake.start()
    try:
        env = {**course_env(batch.root), "CANVAS_API_TOKEN": TOKEN}
        args = ("upload", "--db", db, "--course", 4343, "--assignment", ASSIGNMENT_ID, "--url", url, "--backoff", 0)
        dry = cli(batch.root, *args, env=env)
        assert fake.puts() == [] and "(dry run)" in dry.stdout
        done = cli(batch.root, *args, "--apply", env=env)
        assert TOKEN not in done.stdout + done.stderr
        assert {uid: fake.subs[uid]["score"] for _d, _s, uid in PEOPLE} == {2001: 10.0, 2002: 0.0, 2003: 2.0,
                                                                              2004: None}
        assert fake.subs[2004]["excused"] is True
        comments = {uid: [c["comment"] for c in fake.subs[uid]["submission_comments"]] for _d, _s, uid in PEOPLE}
        assert comments[2004] == ["小さな課題: 免除 / Tiny assignment: excused\n\n[autograder tiny]"]
        [comment] = comments[2003]
        assert comment.startswith("小さな課題 採点結果 / Tiny assignment: feedback")
        assert comment.endswith("[autograder tiny]") and "4 / 10" in comment and "2 / 10" in comment
        assert "加重平均 / weighted mean" in comment and not [w for w in LEC03_WORDS if w in comment]
        again = cli(batch.root, *args, "--apply", env=env)
        assert "changed 0, already up to date 4" in again.stdout
    finally:
        fake.stop()


@pytest.mark.sandbox
def test_a_dask_worker_of_a_course_without_mnist_passes_its_self_check(course):
    """The Dask worker preload checks the data sets its assignment declares: none here, so no MNIST."""
    code = ("import json; from autograder.batch import dask_worker; "
            "print(json.dumps(dask_worker.self_check()))")
    env = {**course_env(course), "AUTOGRADER_DATA": str(course / "no-data-here")}
    done = subprocess.run([PYTHON, "-c", code], cwd=course, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["mnist_profile"] is None and facts["grader_version"]
    assert not (course / "no-data-here").exists()            # nothing fetched for a course without MNIST
