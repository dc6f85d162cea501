"""The class report: its numbers equal the gradebook's, and it renders in headless Chromium with its plots.

``class_gradebook`` builds a small class through ``autograder.record.gradebook`` itself (roster, one batch, the
submissions zip, results of every status, late hand-ins, overrides, an excuse, an anonymous student and a
copied notebook); test_feedback.py uses it too.
"""
from __future__ import annotations

import copy
import html.parser
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import zipfile
from hashlib import sha256
from pathlib import Path
from types import SimpleNamespace

import pytest

import grader_config
from autograder.record import gradebook
from autograder.publish import plots
from autograder.publish import report
from autograder.score.status import NO_SCORE_STATUSES
from autograder.__main__ import main

# --- a class ---------------------------------------------------------------------------------------------
# values the grader knew but students must never see: they sit in result fields feedback must not print
HIDDEN = {
    "expected_w": "-74.3182",
    "hidden_input": "0.61803398",
    "secret_check_name": "hidden_case_7f3a9",
    "expected_rmse": "44.8817",
}

TEMPLATE_CELLS = [
    "import numpy as np\n",
    "def loss(w, b, x, y):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n",
    "def metrics(y_true, y_pred):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n",
]
CODE_A = [
    "import numpy as np\n",
    "def loss(w, b, x, y):\n    pred = w * x + b\n    residual = pred - y\n    return np.mean(residual ** 2)\n",
    "def metrics(y_true, y_pred):\n    err = y_pred - y_true\n    rmse = np.sqrt(np.mean(err ** 2))\n"
    "    mae = np.mean(np.abs(err))\n    r2 = 1 - np.sum(err ** 2) / np.sum((y_true - y_true.mean()) ** 2)\n"
    "    return {'rmse': rmse, 'mae': mae, 'r2': r2}\n",
]
CODE_A_RENAMED = [
    "import numpy as np\n",
    "def loss(w, b, x, y):\n    # 予測\n    yhat = w*x + b\n    r = yhat - y\n    return np.mean(r**2)\n",
    "def metrics(y_true, y_pred):\n    e = y_pred - y_true   # error\n    a = np.sqrt(np.mean(e**2))\n"
    "    m = np.mean(np.abs(e))\n    s = 1 - np.sum(e**2)/np.sum((y_true - y_true.mean())**2)\n"
    "    return {'rmse': a, 'mae': m, 'r2': s}\n",
]
CODE_B = [
    "import numpy as np\n",
    "def loss(w, b, x, y):\n    return ((y - (w * x + b)) ** 2).mean()\n",
    "def metrics(y_true, y_pred):\n    mse = np.mean((y_true - y_pred) ** 2)\n    out = {}\n"
    "    out['rmse'] = float(np.sqrt(mse))\n    out['mae'] = float(np.abs(y_true - y_pred).mean())\n"
    "    ss_res = ((y_true - y_pred) ** 2).sum()\n    ss_tot = ((y_true - np.mean(y_true)) ** 2).sum()\n"
    "    out['r2'] = float(1.0 - ss_res / ss_tot)\n    return out\n",
]


def notebook_bytes(cells: list[str], note: str = "") -> bytes:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": f"# 第3回 課題 {note}"}]
          + [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
             for c in cells]}
    return json.dumps(nb, ensure_ascii=False).encode()


def make_result(status="ok", scores=None, *, failed=(), cells=(), accuracy=None, duration=12.0, message=""):
    """A result dict in grade.py's shape; failed = [(qid, message)]; hidden values sit outside messages."""
    scores = scores or {}
    questions = {}
    for q, pts in grader_config.POINTS.items():
        msgs = [m for fq, m in failed if fq == q]
        checks = [{"name": f"{q}_{HIDDEN['secret_check_name']}", "passed": not msgs,
                   "message": msgs[0] if msgs else "",
                   "expected": HIDDEN["expected_w"], "inputs": [HIDDEN["hidden_input"]]}]
        questions[q] = {"score": float(scores.get(q, pts)), "max_score": float(pts), "checks": checks,
                        "reference": HIDDEN["expected_rmse"]}
    total = sum(q["score"] for q in questions.values()) if status != "invalid" else 0.0
    if status == "invalid":
        questions = {}
    return {
        "status": status, "message": message, "total": total, "max_total": float(sum(grader_config.POINTS.values())),
        "questions": questions,
        "cells": [{"index": i, "status": "ok", "error": None, "duration_s": 0.1} for i in range(3)] + list(cells),
        "measurements": {"mnist_accuracy": accuracy, "seconds": {"mlp": duration * 0.7, "sgd": 1.5}, "device": "cpu",
                         "notebook_seconds": duration * 0.8, "hidden_targets": HIDDEN["expected_rmse"]},
        "duration_s": duration, "seed": grader_config.COURSE_SEED, "grader_version": "test",
        "sandbox": {"note": HIDDEN["hidden_input"]}, "submission_sha256": "",
    }


TRACEBACK = ('Traceback (most recent call last):\n  File "<cell 5>", line 3, in <module>\n'
             "    w, b = normal_equation(x_trian, y_train)\n"
             "NameError: name 'x_trian' is not defined\n")
CELL_ERROR = {"index": 4, "status": "error", "duration_s": 0.01,
              "error": {"ename": "NameError", "evalue": "name 'x_trian' is not defined", "traceback": TRACEBACK}}
CELL_TIMEOUT = {"index": 7, "status": "timeout", "duration_s": 300.0,
                "error": {"ename": "Timeout", "evalue": "cell stopped after 300 s", "traceback": ""}}

SQRT_MSG = "RMSE の平方根を取っていない可能性があります / looks like the square root is missing"
LOSS_MSG = "loss の値が違います (二乗していますか) / loss is off: is the error squared?"

# user_id: (slug, late, notebook bytes or None (missing), result or None)
CLASS = {
    "1001": ("keiotaro", False, CODE_A, make_result(accuracy=0.975, duration=40.0)),
    "1002": ("mitahanako", True, CODE_A_RENAMED,
             make_result(scores={"metrics": 5}, failed=[("metrics", SQRT_MSG)], accuracy=0.958, duration=35.0)),
    "1003": ("hiyoshijiro", False, CODE_B,
             make_result("timeout", scores={"mlp": 0, "sgd": 0}, cells=[CELL_TIMEOUT], duration=905.0)),
    "1004": ("yagamisaburo", False, TEMPLATE_CELLS + ["x = [0] * 10**10\n"],
             make_result("crashed", scores={q: 0 for q in ("gd_step", "minibatches", "sgd", "metrics", "mlp")},
                         duration=60.0)),
    "1005": ("shinanomachi", False, None, make_result("invalid", duration=0.2)),
    "1006": ("shonanfujisawa", False, TEMPLATE_CELLS + ["print('b')\n"], make_result("sandbox_error", duration=1.0)),
    "1007": ("azabu", True, TEMPLATE_CELLS + ["w, b = normal_equation(x_trian, y_train)\n"],
             make_result(scores={"loss": 0, "mlp": 2.5}, failed=[("loss", LOSS_MSG), ("mlp", "精度が低すぎます / accuracy too low")],
                         cells=[CELL_ERROR], accuracy=0.93, duration=50.0)),
    "1008": ("missing1", False, None, None),
    "1009": ("missing2", False, None, None),
    "1010": ("overq", False, TEMPLATE_CELLS + ["# q\n"],
             make_result(scores={"mlp": 0}, failed=[("mlp", "MNIST 精度が足りません / MNIST accuracy too low")],
                         accuracy=0.85, duration=45.0)),
    "1011": ("overall", False, TEMPLATE_CELLS + ["# all\n"],
             make_result(scores={"loss": 0, "gradient": 0}, failed=[("loss", LOSS_MSG)], accuracy=0.97)),
    "1012": ("excused", False, None, None),
}
ANON = ("anon_x7k2q", TEMPLATE_CELLS + ["# anon\n"], make_result(scores={"metrics": 0}, failed=[("metrics", SQRT_MSG)],
                                                         accuracy=0.99, duration=20.0))


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, (2026, 11, 20, 10, 0, 0))
    info.external_attr = (stat.S_IFREG | 0o644) << 16     # a regular file, as K-LMS's zips say
    zf.writestr(info, data)


def build_class_gradebook(root: Path) -> SimpleNamespace:
    """The gradebook, the submissions zip and a release notebook of CLASS under ``root``."""
    db, zpath, release = root / "gradebook.db", root / "submissions.zip", root / "release.ipynb"
    release.write_bytes(notebook_bytes(TEMPLATE_CELLS))
    entries = {}
    with zipfile.ZipFile(zpath, "w") as zf:
        for i, (uid, (slug, late, cells, result)) in enumerate(CLASS.items()):
            if result is None:
                continue
            data = notebook_bytes(cells, uid) if cells is not None else b"{this is not json"
            name = f"{slug}{'_LATE' if late else ''}_{uid}_{555000 + i}_lec03.ipynb"
            _add(zf, name, data)
            entries[uid] = (name, data)
        anon_key, cells, _ = ANON
        data = notebook_bytes(cells, anon_key)
        entries[anon_key] = (f"{anon_key}_lec03.ipynb", data)
        _add(zf, entries[anon_key][0], data)

    conn = gradebook.connect(db)
    roster = [SimpleNamespace(user_id=uid, name=f"学生 {slug}", sis_user_id=f"8{uid}", sis_login_id=slug,
                              section="A") for uid, (slug, *_rest) in CLASS.items()]
    gradebook.load_roster(conn, roster, "ta")
    batch = gradebook.begin_batch(conn, input=str(zpath), input_sha256=None, grader_version="test", by="ta", workers=1)
    for key, (name, data) in entries.items():
        anon = key.startswith("anon_")
        late = False if anon else CLASS[key][1]
        result = copy.deepcopy(ANON[2] if anon else CLASS[key][3])
        sha = sha256(data).hexdigest()
        result["submission_sha256"] = sha
        with gradebook.transaction(conn):
            sid = gradebook.record_submission(
                conn, batch, student_key=key, user_id=None if anon else key, name_slug=key if anon else CLASS[key][0],
                entry_name=name, filename="lec03.ipynb", attachment_id=None, sha256=sha, size=len(data), late=late,
                flags=[])
            gradebook.set_current(conn, key, sid)
        gradebook.record_result(conn, sha, "test", result, batch, "ta")
    gradebook.add_override(conn, "1010", question="mlp", score=8.0, excused=False, reason="部分点: 学習は正しい", by="ta")
    gradebook.add_override(conn, "1011", question=None, score=60.0, excused=False, reason="再提出を考慮", by="ta")
    gradebook.add_override(conn, "1012", question=None, score=None, excused=True, reason="病欠 / sick leave", by="ta")
    gradebook.refresh_grades(conn)
    gradebook.end_batch(conn, batch, "finished", "ta")
    conn.close()
    return SimpleNamespace(db=db, zip=zpath, release=release, entries=entries)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    return build_class_gradebook(tmp_path_factory.mktemp("class"))


@pytest.fixture(scope="module")
def report_html(klass, tmp_path_factory, system_packages):     # the Japanese font before the plots
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--db", str(klass.db), "--out", str(out), "--release", str(klass.release)]) == 0
    return out


# --- reading the report back -----------------------------------------------------------------------------
class _Stats(html.parser.HTMLParser):
    """data-stat cells, <img> sources, tables and the text of every table row."""

    def __init__(self):
        super().__init__()
        self.stats, self.imgs, self.tables, self.rows = {}, [], 0, []
        self._stat, self._row = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag == "table":
            self.tables += 1
        elif tag == "tr":
            self._row = []
        elif tag == "td":
            self._stat = a.get("data-stat")
            if self._row is not None:
                self._row.append("")

    def handle_data(self, data):
        if self._stat is not None:
            self.stats[self._stat] = self.stats.get(self._stat, "") + data
        if self._row:
            self._row[-1] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._stat = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


def parse(text: str) -> _Stats:
    p = _Stats()
    p.feed(text)
    return p


def num(text: str) -> float:
    return float(text.replace("%", "").strip())


def test_numbers_equal_the_gradebook(klass, report_html):
    got = parse(report_html.read_text(encoding="utf-8"))
    db = sqlite3.connect(klass.db)
    q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
    scored = ", ".join(f"'{s}'" for s in NO_SCORE_STATUSES)

    for status, n in q("SELECT status, count(*) FROM grades GROUP BY status"):
        assert got.stats[f"status_{status}"] == str(n), status
    assert sum(int(v) for k, v in got.stats.items() if k.startswith("status_")) == q("SELECT count(*) FROM grades")[0][0]
    assert got.stats["missing"] == str(q("SELECT count(*) FROM grades WHERE status='missing'")[0][0]) == "3"
    assert got.stats["late"] == str(q("SELECT count(*) FROM grades WHERE late=1")[0][0]) == "2"
    assert got.stats["excused"] == "1" and got.stats["overridden"] == "3"
    assert got.stats["graded"] == str(q(f"SELECT count(*) FROM grades WHERE status NOT IN ({scored})")[0][0])

    n, mean, lo, hi = q("SELECT count(final_score), avg(final_score), min(final_score), max(final_score) FROM grades")[0]
    assert int(got.stats["score_n"]) == n
    assert num(got.stats["score_mean"]) == pytest.approx(mean, abs=0.005)
    assert num(got.stats["score_min"]) == lo and num(got.stats["score_max"]) == hi
    assert num(got.stats["score_max"]) == 80 and n == 9      # 1011's override (60) counts, 1012 is excused

    for qid, pts in grader_config.POINTS.items():
        mean, full = q(f"SELECT avg(coalesce(json_extract(questions, '$.{qid}'), 0)), "
                       f"avg(coalesce(json_extract(questions, '$.{qid}'), 0) >= {pts}) "
                       f"FROM grades WHERE status NOT IN ({scored})")[0]
        assert num(got.stats[f"q_mean_{qid}"]) == pytest.approx(mean, abs=0.005), qid
        assert num(got.stats[f"q_full_{qid}"]) == pytest.approx(100 * full, abs=0.05), qid
    assert num(got.stats["q_mean_mlp"]) != pytest.approx(
        q(f"SELECT avg(json_extract(r.questions, '$.mlp.score')) FROM grades g JOIN results r USING (sha256) "
          f"WHERE g.status NOT IN ({scored})")[0][0], abs=0.005)   # the TA's question override is in

    accs = [a for (a,) in q(f"SELECT json_extract(r.measurements, '$.mnist_accuracy') FROM grades g JOIN results r "
                            f"USING (sha256) WHERE g.status NOT IN ({scored})") if a is not None]
    band = grader_config.ACCURACY[os.environ.get("AUTOGRADER_MNIST_PROFILE") or grader_config.MNIST_PROFILE]
    assert int(got.stats["acc_n"]) == len(accs) == 6
    assert int(got.stats["acc_at_full"]) == sum(a >= band["full"] for a in accs)
    assert int(got.stats["acc_below_floor"]) == sum(a < band["floor"] for a in accs)

    failed = {k: int(v) for k, v in got.stats.items() if k.startswith("check_")}
    assert failed[f"check_metrics_metrics_{HIDDEN['secret_check_name']}"] == 2    # 1002 and the anonymous one
    assert failed[f"check_loss_loss_{HIDDEN['secret_check_name']}"] == 2          # 1007 and 1011

    assert {k: num(v) for k, v in got.stats.items() if k.startswith("sim_")} == {"sim_1001_1002": 1.0}


def test_accuracy_band_follows_the_results_profile(klass):
    rep = report.build(klass.db, release=klass.release)
    for g in rep.graded:
        g.result["mnist_profile"] = "small"
    assert rep.mnist_band() == {"profile": "small", **grader_config.ACCURACY["small"]}


def test_similarity_pair_flagged_and_only_it(klass):
    rep = report.build(klass.db, release=klass.release)
    assert [(f.a, f.b) for f in rep.similarity_flags] == [("1001", "1002")]
    assert rep.similarity_note == ""
    # with the zip gone the report still builds, and says what it could not compare
    rep = report.build(klass.db, submissions=klass.zip.parent / "nowhere.zip", release=klass.release)
    assert rep.similarity_flags == [] and "not found" in rep.similarity_note


def test_report_is_self_contained(report_html):
    text = report_html.read_text(encoding="utf-8")
    got = parse(text)
    assert len(got.imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in got.imgs)
    assert "<script" not in text and "http://" not in text and "https://" not in text
    # a staff file: students by roster name and id (issue 10 part 6)
    assert "学生 keiotaro (1001)" in text and "学生 mitahanako (1002)" in text


def test_empty_gradebook_still_renders(tmp_path):
    db = tmp_path / "empty.db"
    gradebook.connect(db).close()
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(db), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    got = parse(text)
    # no result measured an MNIST accuracy: no such section (nor its plot)
    assert len(got.imgs) == 3 and got.stats["students"] == "0" and "MNIST" not in text


def test_mnist_section_only_when_a_result_measured_an_accuracy(klass):
    """An assignment without an MNIST question gets no MNIST section; one result with an accuracy brings it."""
    rep = report.build(klass.db, release=klass.release)
    assert "<h2>MNIST 精度 / MNIST accuracy</h2>" in report.render(rep)
    for g in rep.grades:
        if g.result is not None:
            g.result["measurements"].pop("mnist_accuracy", None)
    text = report.render(rep)
    assert "MNIST accuracy</h2>" not in text and len(parse(text).imgs) == 3
    assert not any(k.startswith("acc_") for k in parse(text).stats)


def test_missing_gradebook_is_an_error(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "r.html")]) == 1
    assert "no gradebook" in capsys.readouterr().err


def test_japanese_font_comes_with_a_package():
    """matplotlib-fontja's IPAexGothic: no system font needed, and no glyph warning on a fresh machine."""
    plots.japanese_font.cache_clear()
    assert plots.japanese_font() == "IPAexGothic"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plots.score_histogram([10.0, 70.0], 80.0).startswith(b"\x89PNG")


def test_triage_and_side_by_side(klass, report_html):
    text = report_html.read_text(encoding="utf-8")
    got = parse(text)
    rows = {r[0]: r for r in got.rows if len(r) == 4}
    assert rows["学生 shinanomachi (1005)"][1] == "invalid" and "Colab" in rows["学生 shinanomachi (1005)"][3]
    assert rows["学生 missing1 (1008)"][1] == "missing"
    assert "late" in rows["学生 azabu (1007)"][2]
    assert "学生 keiotaro (1001) ↔ 学生 mitahanako (1002)" in html.unescape(text)
    assert text.count('class="hit"') > 5


# --- Chromium ----------------------------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


INSTALL = Path(__file__).resolve().parent.parent / ".ci" / "install_browser.sh"


@pytest.fixture(scope="module")
def system_packages() -> None:
    """Installs chromium and fonts-noto-cjk when missing (as root, with apt-get); the tests say what is missing."""
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if (shutil.which("chromium") is None or "Noto Sans CJK" not in fonts) and os.geteuid() == 0 \
            and shutil.which("apt-get"):
        subprocess.run(["bash", str(INSTALL)], check=False, timeout=900)
        plots.japanese_font.cache_clear()


@pytest.fixture(scope="module")
def chromium(system_packages) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(f"chromium is missing and could not be installed: run {INSTALL} as root")
    return exe


def test_report_renders_in_chromium(chromium, report_html, tmp_path):
    exe = chromium
    shot = tmp_path / "report.png"
    common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000"]
    url = report_html.resolve().as_uri()
    subprocess.run([*common, f"--screenshot={shot}", url], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, timeout=120).stdout.decode()
    got = parse(dom)
    assert len(got.imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in got.imgs)
    assert got.tables >= 7
    assert got.stats == parse(report_html.read_text(encoding="utf-8")).stats

    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 3000)
    colours = img.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "blank screenshot"
    # the per-question plot's orange bars (only that plot uses this colour) prove images were drawn
    orange = sum(n for n, (r, g, b) in colours if abs(r - 0xe3) < 12 and abs(g - 0x9b) < 12 and abs(b - 0x36) < 12)
    assert orange > 500
    shutil.copy(shot, Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "keep.png")))


def test_report_says_where_the_notebooks_ran(klass, report_html):
    """Each result records where its PyTorch code could run; the report counts them (here: no GPU)."""
    db = sqlite3.connect(klass.db)
    (n,) = db.execute("SELECT count(*) FROM grades g JOIN results r USING (sha256) "
                      "WHERE json_extract(r.measurements, '$.device') = 'cpu'").fetchone()
    assert n > 0
    rep = report.build(klass.db, release=klass.release)
    assert rep.devices() == {"cpu": n}
    assert f"cpu × {n}" in report_html.read_text(encoding="utf-8")
