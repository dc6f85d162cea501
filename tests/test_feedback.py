"""Per-student feedback: what a student sees, what they must never see, and one file per graded submission."""
from __future__ import annotations

import html
import importlib.util
import json
import re
from pathlib import Path

import pytest

import grader_config
from autograder import assignment
from autograder.publish import feedback
from autograder.record import gradebook
from autograder.__main__ import main


def _class_module():
    """tests/test_report.py (the class gradebook builder), loaded by path whatever the import mode."""
    spec = importlib.util.spec_from_file_location("_report_class", Path(__file__).with_name("test_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


K = _class_module()
HIDDEN = K.HIDDEN


def result_with(**kw) -> dict:
    return K.make_result(**kw)


def all_forms(result: dict, ctx: feedback.Context | None = None) -> dict[str, str]:
    return {"md": feedback.markdown(result, ctx), "html": feedback.html_page(result, ctx),
            "text": feedback.plain_text(result, ctx=ctx)}


def assert_no_hidden(text: str) -> None:
    for what, value in HIDDEN.items():
        assert value not in text, what
    assert "hidden_targets" not in text and "reference" not in text


# --- content ------------------------------------------------------------------------------------------------
def test_failed_check_messages_and_scores_shown_hidden_values_not():
    r = result_with(scores={"metrics": 5, "loss": 0}, failed=[("metrics", K.SQRT_MSG), ("loss", K.LOSS_MSG)],
                    accuracy=0.9712)
    for form, text in all_forms(r).items():
        plain = html.unescape(text) if form == "html" else text.replace("\\", "")
        assert "RMSE の平方根を取っていない可能性があります" in plain, form
        assert "looks like the square root is missing" in plain, form
        assert "loss の値が違います" in plain, form
        assert "65 / 80" in plain and "5 / 10" in plain, form
        assert "97.12 %" in plain, form
        assert_no_hidden(text)


def test_no_hidden_values_in_any_status():
    statuses = ["ok", "timeout", "crashed", "invalid", "sandbox_error"]
    for status in statuses:
        r = result_with(status=status, scores={"loss": 0}, failed=[("loss", K.LOSS_MSG)],
                        cells=[K.CELL_ERROR], accuracy=0.9)
        for text in all_forms(r, feedback.Context(label="u1", final_score=10, late=True, overridden=True)).values():
            assert_no_hidden(text)


def test_failing_cell_traceback_appears():
    r = result_with(scores={"sgd": 0}, failed=[("sgd", "train_sgd が定義されていません / train_sgd is not defined")],
                    cells=[K.CELL_ERROR])
    forms = all_forms(r)
    for form, text in forms.items():
        plain = html.unescape(text) if form == "html" else text
        assert "NameError: name 'x_trian' is not defined" in plain, form
        assert "w, b = normal_equation(x_trian, y_train)" in plain, form
        assert "5" in plain and ("code cell 5" in plain), form     # index 4 is the 5th code cell
    assert "```text\nTraceback (most recent call last):" in forms["md"]


def test_status_explained():
    for status in ("timeout", "crashed", "invalid", "sandbox_error"):
        r = result_with(status=status, message="cell(s) 8 ran past the time limit")
        text = feedback.plain_text(r)
        assert feedback.STATUS_TEXT[status][0] in text
        assert feedback.STATUS_TEXT[status][1] in text
    assert "cell(s) 8 ran past the time limit" in feedback.plain_text(result_with(status="timeout", message="cell(s) 8 ran past the time limit"))
    # a grader failure's own message is about the grader, not for the student
    internal = "sandbox could not be set up on this machine, nothing was run: unshare EPERM /srv/x"
    assert "unshare" not in feedback.plain_text(result_with(status="sandbox_error", message=internal))
    ok = feedback.plain_text(result_with())
    assert feedback.STATUS_TEXT["ok"][0] in ok and "時間切れ" not in ok


def test_cell_timeout_and_skipped_cells():
    skipped = {"index": 9, "status": "skipped", "duration_s": 0.0, "error": None}
    text = feedback.plain_text(result_with(status="timeout", cells=[K.CELL_TIMEOUT, skipped]))
    assert "code cell 8" in text and "cell stopped after 300 s" in text
    assert "1 cell(s) did not run" in text


def test_partial_credit_message_shown():
    r = result_with(scores={"mlp": 6.5})
    r["questions"]["mlp"]["checks"] = [{"name": "acc", "passed": True, "message": "部分点 / partial credit 0.65"},
                                       {"name": "shape", "passed": True, "message": "OK"}]
    text = feedback.plain_text(r)
    assert "partial credit 0.65" in text and "\n  - OK" not in text


def test_context_late_override_excused():
    r = result_with(scores={"mlp": 0}, failed=[("mlp", "精度が低すぎます / accuracy too low")])
    text = feedback.plain_text(r, ctx=feedback.Context(final_score=78, late=True, overridden=True,
                                                      question_overrides={"mlp": 8}))
    assert "最終得点 / Final score: 78 / 80 (提出遅れ / late, TA による調整 / adjusted by a TA)" in text
    assert "0 / 10 → 8 (TA)" in text
    assert "免除 / excused" in feedback.plain_text(r, ctx=feedback.Context(excused=True, overridden=True))
    assert "最終得点" not in feedback.plain_text(result_with(), ctx=feedback.Context(final_score=80))


# --- escaping -------------------------------------------------------------------------------------------------
EVIL = {"index": 0, "status": "error", "duration_s": 0.0,
        "error": {"ename": "ValueError", "evalue": "<script>alert('x')</script> **bold** ```",
                  "traceback": "Traceback:\n  raise ValueError('<img src=x onerror=alert(1)>')\n"
                               "```\n# not a heading\nValueError: <script>alert('x')</script>"}}


def test_html_is_escaped_and_self_contained():
    page = feedback.html_page(result_with(cells=[EVIL]))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page


def test_markdown_keeps_student_text_as_text():
    md = feedback.markdown(result_with(cells=[EVIL]))
    assert "<script>" not in md.split("````")[0]      # escaped in prose
    assert "\\<script\\>" in md
    # the traceback holds ``` itself: the fence must be longer, so the code block is not cut short
    assert "````text\nTraceback:" in md and "\n````" in md


def test_ansi_colour_codes_removed():
    cell = {"index": 1, "status": "error", "duration_s": 0.0,
            "error": {"ename": "KeyError", "evalue": "'a'", "traceback": "\x1b[0;31mKeyError\x1b[0m: 'a'"}}
    for text in all_forms(result_with(cells=[cell])).values():
        assert "\x1b" not in text and "[0;31m" not in text


# --- plain text length --------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [300, 800, 1500, 4000])
def test_plain_text_within_limit(limit):
    long_tb = "Traceback (most recent call last):\n" + "".join(f"  File \"x.py\", line {i}, in f\n    f()\n"
                                                             for i in range(2000)) + "RecursionError: too deep\n"
    cells = [{"index": i, "status": "error", "duration_s": 0.0,
              "error": {"ename": "RecursionError", "evalue": "too deep", "traceback": long_tb}} for i in range(3)]
    r = result_with(scores={"loss": 0, "mlp": 0}, failed=[("loss", K.LOSS_MSG), ("mlp", "x" * 500)], cells=cells)
    text = feedback.plain_text(r, max_chars=limit)
    assert len(text) <= limit
    assert "Autograder score: 60 / 80" in text              # the score survives any trimming
    if limit >= 1500:
        assert K.LOSS_MSG in text and "RecursionError: too deep" in text


def test_plain_text_default_keeps_a_short_feedback_whole():
    r = result_with(scores={"loss": 0}, failed=[("loss", K.LOSS_MSG)], cells=[K.CELL_ERROR])
    text = feedback.plain_text(r)
    assert len(text) <= feedback.MAX_CHARS and feedback.TRUNCATED.strip() not in text
    assert K.TRACEBACK.strip().splitlines()[-1] in text


# --- the command over a gradebook ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("fb")
    klass = K.build_class_gradebook(root)
    out = root / "feedback"
    assert main(["feedback", "--db", str(klass.db), "--out", str(out)]) == 0
    return klass, out


def test_every_graded_submission_has_feedback(written):
    klass, out = written
    conn = gradebook.connect(klass.db, create=False)
    graded = [g for g in gradebook.grades(conn) if g.result is not None]
    conn.close()
    assert len(graded) == 10             # 12 roster students, 3 missing, plus one anonymous
    expected = {feedback.file_id(g) for g in graded}
    assert expected == {f"u{uid}" for uid, v in K.CLASS.items() if v[3] is not None} | {K.ANON[0]}
    assert {p.name for p in out.iterdir()} == {f"{s}.{ext}" for s in expected for ext in ("md", "html")}


def test_no_names_and_no_hidden_values_in_any_file(written):
    _, out = written
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        assert_no_hidden(text)
        for uid, (slug, *_rest) in K.CLASS.items():
            assert slug not in path.name and slug not in text


def test_files_carry_the_gradebook_view(written):
    _, out = written
    assert "NameError: name &#x27;x_trian&#x27; is not defined" in (out / "u1007.html").read_text(encoding="utf-8")
    assert "x\\_trian" in (out / "u1007.md").read_text(encoding="utf-8")          # prose, escaped
    assert "normal_equation(x_trian, y_train)" in (out / "u1007.md").read_text(encoding="utf-8")  # code block
    assert "提出遅れ / late" in (out / "u1002.md").read_text(encoding="utf-8")
    assert "→ 8 (TA)" in (out / "u1010.md").read_text(encoding="utf-8")
    assert "60 / 80" in (out / "u1011.md").read_text(encoding="utf-8")
    assert "読み込み不可" in (out / "u1005.md").read_text(encoding="utf-8")
    assert "採点システムのエラー" in (out / "u1006.md").read_text(encoding="utf-8")


def test_file_ids_never_use_a_name():
    from types import SimpleNamespace as G
    assert feedback.file_id(G(student_key="1001", user_id="1001", submission_id=3)) == "u1001"
    assert feedback.file_id(G(student_key="anon_ab12", user_id=None, submission_id=4)) == "anon_ab12"
    assert feedback.file_id(G(student_key="file:山田太郎_lec03.ipynb", user_id=None, submission_id=5)) == "submission5"


def test_missing_gradebook_is_an_error(tmp_path, capsys):
    assert main(["feedback", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "o")]) == 1
    assert "no gradebook" in capsys.readouterr().err


def test_question_titles_come_from_the_assignment():
    titles = {q: assignment.current().question_title(q) for q in grader_config.QUESTIONS}
    assert titles["normal_equation"] == "正規方程式 / normal equation" and titles["mlp"] == "MLP (MNIST)"
    assert feedback.title() == "第3回 課題 採点結果 / Lecture 3 assignment: feedback"
    text = feedback.plain_text(result_with())
    assert all(title in text for title in titles.values())
    assert json.dumps(feedback.STATUS_TEXT, ensure_ascii=False)


def test_parts_are_shown_when_present_and_absence_is_fine():
    """A question may report partial credit per function: each part's score is shown in every form."""
    res = result_with()
    q = res["questions"]["metrics"]
    q["score"] = 6.0
    q["parts"] = {"mse": {"score": 3.0, "max_score": 3.0}, "rmse": {"score": 0.0, "max_score": 3.0},
                  "mae": {"score": 3.0, "max_score": 4.0}}
    q["checks"] = [{"name": "rmse value", "passed": False, "message": "rmse is not the square root of mse",
                    "part": "rmse"}]
    for form, text in all_forms(res).items():
        assert "mse" in text and "rmse" in text, form
        plain = html.unescape(re.sub(r"<[^>]+>", " ", text)).replace("\\", "")
        assert re.search(r"rmse\W+0 / 3", plain), form
        assert re.search(r"mae\W+3 / 4", plain), form
        assert "rmse: rmse is not the square root of mse" in plain, form
    # a question that is one part named after itself gets no part row repeating its score
    res["questions"]["sgd"]["parts"] = {"sgd": {"score": 10.0, "max_score": 10.0}}
    assert not re.search(r"└ sgd\b", feedback.plain_text(res)) and "└ rmse" in feedback.plain_text(res)
    # without parts (and with odd values) nothing breaks and no part row appears
    q.pop("parts")
    assert "└" not in feedback.plain_text(res)
    q["parts"] = "not a dict"
    assert "└" not in feedback.markdown(res)
