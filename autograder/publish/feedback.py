"""Per-student feedback (Japanese with English) from one grading result: Markdown, HTML and plain text.

What a student sees: the score per question, the message of each failed check, the error and traceback of
every cell that raised while the grader ran the notebook, and what a non-``ok`` status means. Nothing else
of a result is shown: check names, hidden inputs, expected values and grader internals stay out (check
messages are written for students by the hidden tests, and are the only check text used here).

``python -m autograder feedback --db DB --out DIR`` writes ``<id>.md`` and ``<id>.html`` for every graded
submission, named by Canvas user id (``u1001``) or anonymous id (``anon_x7k2``), never by student name.
``plain_text(result, max_chars=...)`` is the Canvas comment (Canvas comments are plain text).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignment
from autograder.publish.numbers import shown
from autograder.config import grader_config
from autograder.result import CheckRecord, QuestionResult, Result, Status, parse

MAX_CHARS = 4000            # default length of the plain-text comment
TRACEBACK_LINES = 25        # lines of a traceback kept in Markdown/HTML (the end, where the error is)
TEXT_TRACEBACK_LINES = 8    # ... and in plain text

_LIMITS = grader_config.LIMITS
_PROBED_JA, _PROBED_EN = assignment.current().probe_calls
STATUS_TEXT = {
    # status: (short label, explanation shown when the status is not ok)
    "ok": ("採点完了 / graded", ""),
    "timeout": (
        "時間切れ / timed out",
        f"セルの実行 (1 セル {_LIMITS['cell_timeout_s']} 秒まで、全体 {_LIMITS['notebook_timeout_s']} 秒まで)、または"
        f"採点のための関数の呼び出し (1 回 {_LIMITS['call_timeout_s']} 秒まで、{_PROBED_JA}は "
        f"{_LIMITS['probe_timeout_s']} 秒まで) が制限時間を超えたため止めました。無限ループや、必要以上に長い学習 "
        "(エポック数・データ量) がないか確認してください。 / A cell (up to "
        f"{_LIMITS['cell_timeout_s']} s each, {_LIMITS['notebook_timeout_s']} s in all) or a call of one of your "
        f"functions by the grader (up to {_LIMITS['call_timeout_s']} s, {_LIMITS['probe_timeout_s']} s for "
        f"{_PROBED_EN}) ran past its time limit and was stopped. Look for an endless loop or training "
        "that runs much longer than needed.",
    ),
    "crashed": (
        "異常終了 / crashed",
        "ノートブックを実行していた Python プロセスが異常終了しました (メモリの使いすぎ、os._exit() などが原因になります)。"
        f"メモリの上限は {_LIMITS['memory_bytes'] // 1024**3} GiB です。 / The Python process running your "
        "notebook died (too much memory, os._exit() and the like cause this). The memory limit is "
        f"{_LIMITS['memory_bytes'] // 1024**3} GiB.",
    ),
    "invalid": (
        "読み込み不可 / not a notebook",
        "提出されたファイルを Jupyter ノートブック (.ipynb) として読み込めませんでした。Colab の「ファイル → ダウンロード → "
        ".ipynb をダウンロード」で保存したファイルを提出してください。 / The file you handed in could not be read as a "
        "Jupyter notebook (.ipynb). Hand in the file from Colab's File → Download → Download .ipynb.",
    ),
    "sandbox_error": (
        "採点システムのエラー / grader error",
        "採点システム側の問題で採点できませんでした。あなたの提出物の問題ではありません。TA が確認して再採点します。 / "
        "The grader itself failed on this submission; this is not a problem with your work. The TAs will "
        "look at it and grade it again.",
    ),
}
CELL_STATUS_TEXT = {
    "error": "エラー / error",
    "timeout": "時間切れ / timed out",
    "crashed": "異常終了 / crashed",
}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


# --- a small document model, rendered three ways ---------------------------------------------------------
@dataclass
class Block:
    kind: str                       # h1 h2 h3 p kv table list code
    text: str = ""
    rows: list = field(default_factory=list)   # kv: [(key, value)]; table: [header, *rows]; list: [item]
    priority: int = 0               # plain text drops higher numbers first when it must be short


@dataclass
class Context:
    """What the gradebook knows beyond the result (all optional); see ``context_for``."""

    label: str | None = None        # e.g. "u1001" (never a name)
    final_score: float | None = None
    late: bool = False
    overridden: bool = False
    excused: bool = False
    question_overrides: dict = field(default_factory=dict)   # {qid: score set by a TA}


def _clean(text) -> str:
    return _ANSI.sub("", str(text or "")).replace("\r\n", "\n").replace("\r", "\n")


def _tail_lines(text: str, n: int) -> str:
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= n:
        return "\n".join(lines)
    return "...\n" + "\n".join(lines[-n:])


def title() -> str:
    """The feedback's heading: "第3回 課題 採点結果 / Lecture 3 assignment: feedback" (the assignment's title)."""
    ja, en = assignment.current().title
    return f"{ja} 採点結果 / {en}: feedback"


def _questions(res: Result) -> list[tuple[str, QuestionResult]]:
    qs = res["questions"]
    order = [q for q in grader_config.QUESTIONS if q in qs] + sorted(q for q in qs if q not in grader_config.QUESTIONS)
    return [(q, qs[q]) for q in order]


def document(result: dict, ctx: Context | None = None) -> list[Block]:
    """The feedback as blocks; the three renderers below only format these. ``result`` is a grading result
    as grade_notebook returns it or the gradebook stores it (``autograder.result.parse`` reads either)."""
    res, ctx = parse(result), ctx or Context()
    return [Block("h1", title()), *_summary(res, ctx), *_status_explained(res), *_per_question(res, ctx),
            *_cell_errors(res), Block("p", "採点についての質問は TA に連絡してください。 / Questions about your grade: "
                                           "ask the TAs.", priority=2)]


def _summary(res: Result, ctx: Context) -> list[Block]:
    """Scores, the final score when it differs (late, a TA's adjustment, an excuse), status, MNIST accuracy."""
    summary = []
    if ctx.label:
        summary.append(("提出 / Submission", ctx.label))
    summary.append(("自動採点の得点 / Autograder score", f"{shown(res['total'])} / {shown(res['max_total'])}"))
    if ctx.excused:
        summary.append(("最終得点 / Final score", "免除 / excused"))
    elif ctx.final_score is not None and (ctx.late or ctx.overridden
                                          or abs(float(ctx.final_score) - res["total"]) > 1e-9):
        why = []
        if ctx.late:
            why.append("提出遅れ / late")
        if ctx.overridden:
            why.append("TA による調整 / adjusted by a TA")
        summary.append(("最終得点 / Final score",
                        f"{shown(ctx.final_score)} / {shown(res['max_total'])}" + (f" ({', '.join(why)})" if why else "")))
    elif ctx.late:
        summary.append(("提出 / Hand-in", "提出遅れ / late"))
    summary.append(("状態 / Status", STATUS_TEXT[res["status"]][0]))
    acc = res["measurements"].get("mnist_accuracy")
    if acc is not None:
        summary.append(("MNIST テスト精度 / MNIST test accuracy", f"{100 * acc:.2f} %"))
    return [Block("kv", rows=summary)]


def _status_explained(res: Result) -> list[Block]:
    """What a status other than ok means, and the grader's details where they are the student's."""
    status = res["status"]
    blocks = []
    if status != Status.OK:
        blocks.append(Block("p", STATUS_TEXT[status][1], priority=1))
    if status in (Status.TIMEOUT, Status.CRASHED, Status.INVALID) and res["message"].strip():
        blocks.append(Block("p", "詳細 / Details: " + _clean(res["message"]).strip()))
    return blocks


def _shown_parts(qid: str, q: QuestionResult) -> list[tuple[str, dict]]:
    """The part rows under a question: none when its one part is the question itself (the row would only
    repeat the question's score)."""
    parts = list(q["parts"].items())
    return [] if len(parts) == 1 and parts[0][0] == qid else parts


def _per_question(res: Result, ctx: Context) -> list[Block]:
    """The score table (parts included), then what was found per question that lost points."""
    questions = _questions(res)
    if not questions:
        return []
    blocks = [Block("h2", "設問ごとの得点 / Score per question")]
    table = [("設問 / Question", "得点 / Score", "結果 / Result")]
    details = []
    for qid, q in questions:
        name = assignment.current().question_title(qid)
        score, max_score = q["score"], q["max_score"]
        text = f"{shown(score)} / {shown(max_score)}"
        graded_full = max_score is None or score >= max_score - 1e-9
        if ctx.question_overrides.get(qid) is not None:
            score = ctx.question_overrides[qid]
            text += f" → {shown(score)} (TA)"
        table.append((name, text, _verdict(score, max_score)))
        for part, p in _shown_parts(qid, q):             # partial credit per function (e.g. mse/rmse/mae)
            table.append((f"  └ {part}", f"{shown(p['score'])} / {shown(p['max_score'])}",
                          _verdict(p["score"], p["max_score"])))
        notes = _check_notes(q, graded_full)
        if notes or not graded_full:
            details.append(Block("h3", f"{name}: {text}"))
            details.append(Block("list", rows=list(dict.fromkeys(m for m in notes if m)) or [
                "このノートブックでは確認できませんでした (上の状態を参照) / this could not be checked "
                "(see the status above)"]))
    blocks.append(Block("table", rows=table, priority=1))
    # an unreadable notebook or a grader failure fails every question alike: the status says it all
    if res["status"] not in (Status.INVALID, Status.SANDBOX_ERROR):
        blocks += details
    return blocks


def _check_notes(q: QuestionResult, graded_full: bool) -> list[str]:
    """Failed checks' messages, and a passed check's note (partial credit) when points were lost."""
    return [_part_prefix(c) + _clean(c["message"]).strip() for c in q["checks"]
            if c["message"].strip() and (not c["passed"] or (not graded_full and c["message"].strip() != "OK"))]


def _cell_errors(res: Result) -> list[Block]:
    """Every cell that raised, timed out or crashed, with its traceback; how many cells never ran."""
    bad = [c for c in res["cells"] if c["status"] in CELL_STATUS_TEXT]
    skipped = sum(1 for c in res["cells"] if c["status"] == "skipped")
    if not bad and not skipped:
        return []
    blocks = [Block("h2", "ノートブック実行中のエラー / Errors while running your notebook"),
              Block("p", "セル番号は、ノートブックのコードセルを先頭から数えたものです。 / "
                         "Cells are numbered by counting code cells from the top of the notebook.", priority=2)]
    for cell in bad:
        n = "?" if cell["index"] is None else cell["index"] + 1
        err = cell["error"] or {}
        blocks.append(Block("h3", f"コードセル {n} / code cell {n}: {CELL_STATUS_TEXT[cell['status']]}"))
        head = ": ".join(s for s in (_clean(err.get("ename")), _clean(err.get("evalue"))) if s)
        if head:
            blocks.append(Block("p", head))
        tb = _clean(err.get("traceback")).strip("\n")
        if tb:
            blocks.append(Block("code", tb))
    if skipped:
        blocks.append(Block("p", f"時間切れのため {skipped} 個のセルが実行されませんでした。 / "
                                 f"{skipped} cell(s) did not run because time ran out."))
    return blocks


def _verdict(score: float | None, max_score: float | None) -> str:
    score = score or 0.0
    if max_score is not None and score >= max_score - 1e-9:
        return "満点 / full marks"
    return "部分点 / partial" if score > 0 else "0 点 / no points"


def _part_prefix(check: CheckRecord) -> str:
    part = check["part"]
    return f"{_clean(part)}: " if part and part.strip() else ""


# --- renderers --------------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>#|!~])")


def _md(text: str) -> str:
    """Markdown-escape prose so that student-controlled text (an exception message) stays text."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;")).replace("\n", "  \n")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + _md(b.text))
        elif b.kind == "p":
            out.append(_md(b.text))
        elif b.kind == "kv":
            out.append("\n".join(f"- **{_md(k)}**: {_md(v)}" for k, v in b.rows))
        elif b.kind == "table":
            head, *rows = b.rows
            lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif b.kind == "list":
            out.append("\n".join("- " + _md(item) for item in b.rows))
        elif b.kind == "code":
            fence = _fence(b.text)
            out.append(f"{fence}text\n{_tail_lines(b.text, TRACEBACK_LINES)}\n{fence}")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif; max-width: 60em;
       margin: 2em auto; padding: 0 1em; line-height: 1.6; color: #222; }
h1 { font-size: 1.5em; border-bottom: 2px solid #446; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; } table { border-collapse: collapse; } td, th { border: 1px solid #bbb; padding: .3em .7em; }
th { background: #eef; text-align: left; } dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .7em; overflow-x: auto; font-size: .85em; }
"""


def to_html(blocks: list[Block]) -> str:
    e = html.escape
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>".replace("\n", "<br>"))
        elif b.kind == "kv":
            body.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in b.rows) + "</dl>")
        elif b.kind == "table":
            head, *rows = b.rows
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
                        + "</table>")
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in b.rows) + "</ul>")
        elif b.kind == "code":
            body.append(f"<pre>{e(_tail_lines(b.text, TRACEBACK_LINES))}</pre>")
    heading = blocks[0].text if blocks and blocks[0].kind == "h1" else title()
    return (f'<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n<title>{e(heading)}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def to_text(blocks: list[Block], tb_lines: int | None = TEXT_TRACEBACK_LINES) -> str:
    out = []
    for b in blocks:
        if b.kind == "h1":
            out.append(b.text)
        elif b.kind in ("h2", "h3"):
            out.append(("■ " if b.kind == "h2" else "・") + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "kv":
            out.append("\n".join(f"{k}: {v}" for k, v in b.rows))
        elif b.kind == "table":
            out.append("\n".join(f"  {row[0]}: {row[1]}" for row in b.rows[1:]))
        elif b.kind == "list":
            out.append("\n".join(f"  - {item}" for item in b.rows))
        elif b.kind == "code" and tb_lines:
            out.append("\n".join("    " + ln for ln in _tail_lines(b.text, tb_lines).split("\n")))
    return "\n\n".join(out).strip() + "\n"


TRUNCATED = "\n…(長いため省略しました / shortened; the full feedback is with the TAs)\n"


def _shorten(blocks: list[Block], max_chars: int) -> str:
    """The plain text within max_chars: optional blocks and traceback lines go step by step, then a cut."""
    steps = ((TEXT_TRACEBACK_LINES, 2), (TEXT_TRACEBACK_LINES, 1), (3, 1), (3, 0), (None, 0))
    for i, (tb_lines, max_priority) in enumerate(steps):
        text = to_text([b for b in blocks if b.priority <= max_priority], tb_lines)
        if i:
            text = text.rstrip() + TRUNCATED
        if len(text) <= max_chars:
            return text
    text = to_text([b for b in blocks if b.priority <= 0], None)
    room = max(0, max_chars - len(TRUNCATED))
    cut = text[:room]
    if "\n" in cut[room // 2:]:
        cut = cut[:cut.rindex("\n")]
    return (cut.rstrip() + TRUNCATED)[:max_chars]


# --- the three public forms -------------------------------------------------------------------------------
def markdown(result: dict, ctx: Context | None = None) -> str:
    return to_markdown(document(result, ctx))


def html_page(result: dict, ctx: Context | None = None) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external resources)."""
    return to_html(document(result, ctx))


def plain_text(result: dict, max_chars: int = MAX_CHARS, ctx: Context | None = None) -> str:
    """The feedback as plain text for a Canvas comment, at most ``max_chars`` characters."""
    return _shorten(document(result, ctx), max_chars)


# --- files per graded submission (``python -m autograder feedback``) ------------------------------------
def file_id(grade) -> str:
    """A file name stem for a gradebook ``Grade``: Canvas user id or anonymous id, never a name."""
    key = str(grade.student_key)
    if grade.user_id is not None:
        stem = f"u{grade.user_id}"
    elif key.startswith("anon_"):
        stem = key
    else:                           # "file:<name>": the name may be a person's, so the submission id instead
        stem = f"submission{grade.submission_id}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def context_for(grade) -> Context:
    """The feedback context of a gradebook ``Grade`` (late flag, overrides, final score)."""
    q_over = {o["question"]: o["score"] for o in grade.overrides if o["question"] is not None}
    return Context(label=file_id(grade), final_score=grade.final_score, late=grade.late,
                   overridden=bool(grade.overrides), excused=grade.excused, question_overrides=q_over)


def write_files(grades, out: str | Path) -> int:
    """``<id>.md`` and ``<id>.html`` in ``out`` for every gradebook ``Grade`` with a result; how many."""
    graded = [g for g in grades if g.result is not None]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for g in graded:
        stem = file_id(g)
        if stem in seen:            # two keys that sanitise alike: keep both files
            stem = f"{stem}_{g.submission_id}"
        seen.add(stem)
        blocks = document(g.result, context_for(g))
        (out / f"{stem}.md").write_text(to_markdown(blocks), encoding="utf-8")
        (out / f"{stem}.html").write_text(to_html(blocks), encoding="utf-8")
    return len(graded)
