"""``python -m autograder report --db DB --out report.html``: the class report, for the teaching staff.

One self-contained HTML file (inline CSS, plots embedded as base64 PNG, no scripts, nothing fetched):
score distribution, per-question mean and full-marks rate, status counts, the most frequent failed checks,
MNIST accuracy against the threshold, late and missing counts, the slowest submissions, TA overrides,
the triage table (every student who needs a TA, and what to do next), similarity flags with the matching
code of both students side by side, and gradebook flags.

Every number comes from ``gradebook.grades()``, the one reader of scores (the ``grades`` table is its
stored copy), so the report agrees with the export; an anonymous file matched to a named student is that
student's and is not counted again. Students appear by roster name and Canvas user id (this is a staff
file; TA override reasons appear here too, never in anything a student sees).
Value cells carry ``data-stat`` attributes so that tests (and scripts) can read the numbers back.
"""
from __future__ import annotations

import base64
import html
import os
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder.config import grader_config

from autograder import assignment
from autograder.record import gradebook
from autograder.ingest import submissions as ingest
from autograder.publish import plots
from autograder.publish.numbers import shown
from autograder.publish import similarity
from autograder.score import status as score_status

TOP_CHECKS = 15
TOP_SLOWEST = 10


def who(g) -> str:
    """How a student is named in the report (a staff file): roster name and Canvas user id, else the
    anonymous id, or the submission id for a file not named the K-LMS way."""
    if g.user_id is not None or g.student_key.startswith("anon_"):
        return gradebook.label(g)
    return f"submission {g.submission_id}"


@dataclass
class Report:
    grades: list
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0).isoformat())
    similarity_flags: list = field(default_factory=list)
    similarity_note: str = ""
    triage: list = field(default_factory=list)
    names: dict = field(default_factory=dict)       # student key -> who()

    # -- the numbers ------------------------------------------------------------------------------------------
    @property
    def graded(self) -> list:
        """Students whose notebook the grader judged (a score exists, before overrides)."""
        return [g for g in self.grades if score_status.has_score(g.status)]

    def counts(self) -> dict[str, int]:
        gs = self.grades
        return {
            "students": len(gs),
            "in_roster": sum(g.in_roster for g in gs),
            "submitted": sum(g.status != "missing" for g in gs),
            "graded": len(self.graded),
            "missing": sum(g.status == "missing" for g in gs),
            "late": sum(bool(g.late) for g in gs if g.status != "missing"),
            "excused": sum(bool(g.excused) for g in gs),
            "overridden": sum(bool(g.overrides) for g in gs),
        }

    def final_scores(self) -> list[float]:
        return [float(g.final_score) for g in self.grades if g.final_score is not None]

    def score_stats(self) -> dict[str, float | int | None]:
        s = self.final_scores()
        return {"n": len(s), "mean": statistics.fmean(s) if s else None, "median": statistics.median(s) if s else None,
                "min": min(s) if s else None, "max": max(s) if s else None}

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(g.status for g in self.grades).most_common())

    def questions(self) -> list[dict]:
        out = []
        graded = self.graded
        for q in grader_config.QUESTIONS:
            top = float(grader_config.POINTS[q])
            scores = [float(g.questions.get(q) or 0.0) for g in graded]
            out.append({"qid": q, "max": top, "n": len(scores),
                        "mean": statistics.fmean(scores) if scores else None,
                        "full_rate": sum(s >= top - 1e-9 for s in scores) / len(scores) if scores else None})
        return out

    def failed_checks(self) -> list[dict]:
        """(question, check) pairs by how many graded students failed them, with the commonest message."""
        students: Counter = Counter()
        messages: dict = {}
        for g in self.graded:
            seen = set()
            for qid, q in g.result["questions"].items():
                for c in q["checks"]:
                    if not c["passed"]:
                        key = (qid, c["name"])
                        if key not in seen:
                            seen.add(key)
                            students[key] += 1
                        messages.setdefault(key, Counter())[c["message"]] += 1
        return [{"qid": k[0], "check": k[1], "students": n, "message": messages[k].most_common(1)[0][0]}
                for k, n in sorted(students.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CHECKS]]

    def accuracies(self) -> list[float]:
        return [g.result["measurements"]["mnist_accuracy"] for g in self.graded
                if "mnist_accuracy" in g.result["measurements"]]

    def has_accuracy(self) -> bool:
        """Whether any result measured an MNIST accuracy (an assignment without such a question: never)."""
        return any(g.result is not None and "mnist_accuracy" in g.result["measurements"] for g in self.grades)

    def mnist_band(self) -> dict:
        """The accuracy band of the MNIST profile the results were graded under (else the configured one)."""
        used = Counter(g.result["mnist_profile"] for g in self.graded
                       if g.result["mnist_profile"] in grader_config.ACCURACY)
        profile = used.most_common(1)[0][0] if used else (
            os.environ.get("AUTOGRADER_MNIST_PROFILE") or grader_config.MNIST_PROFILE)
        return {"profile": profile, **grader_config.ACCURACY[profile]}

    def accuracy_stats(self) -> dict:
        band, acc = self.mnist_band(), self.accuracies()
        return {**band, "n": len(acc), "no_value": len(self.graded) - len(acc),
                "at_full": sum(a >= band["full"] for a in acc),
                "partial": sum(band["floor"] <= a < band["full"] for a in acc),
                "below_floor": sum(a < band["floor"] for a in acc),
                "median": statistics.median(acc) if acc else None}

    def devices(self) -> dict[str, int]:
        """Where the graded notebooks' PyTorch code ran (``cpu`` or ``cuda: <GPU>``), with counts."""
        found = Counter(g.result["measurements"]["device"]
                        for g in self.grades if g.result is not None and g.result["measurements"].get("device"))
        return dict(found.most_common())

    def slowest(self) -> list[dict]:
        rows = []
        for g in self.grades:
            if g.result is None or g.result["duration_s"] is None:
                continue
            m = g.result["measurements"]
            secs = m.get("seconds", {})
            worst = max(secs, key=secs.get) if secs else None
            rows.append({"who": who(g), "status": g.status, "duration_s": g.result["duration_s"],
                         "notebook_seconds": m.get("notebook_seconds"),
                         "slowest_question": f"{worst} ({secs[worst]:.1f} s)" if worst else "–"})
        rows.sort(key=lambda row: -row["duration_s"])
        return rows[:TOP_SLOWEST]

    def overrides(self) -> list[dict]:
        return [{"who": who(g), **o} for g in self.grades for o in g.overrides]

    def flagged(self) -> list[tuple[str, list[str]]]:
        return [(who(g), g.flags) for g in self.grades if g.flags]


# --- similarity: the notebooks come from the batch input, matched to the gradebook by sha256 --------------
def load_notebooks(conn, grades, submissions: str | Path | None = None) -> tuple[dict[str, dict], str]:
    """{student key: notebook dict} of every current submission found, and a note on what could not be found.

    The input is read by ``ingest`` (its limits and member-name checks apply) into a temporary folder.
    """
    wanted: dict[str, list] = {}
    for g in grades:
        if g.sha256 and g.result is not None:
            wanted.setdefault(g.sha256, []).append(g)
    sources = [Path(submissions)] if submissions else list(dict.fromkeys(
        Path(r[0]) for r in conn.execute("SELECT input FROM batches ORDER BY id DESC")))
    found: dict[str, dict] = {}
    for src in sources:
        if not wanted:
            break
        if not src.exists():
            continue
        with tempfile.TemporaryDirectory(prefix="autograder-report-") as tmp:
            try:
                got = ingest.ingest(src, tmp)
            except (ingest.IngestError, OSError):
                continue
            for nb in got.notebooks:
                if nb.sha256 in wanted and nb.path is not None:
                    data = similarity.load_notebook(nb.path)
                    for g in wanted.pop(nb.sha256):
                        if data is not None:
                            found[g.student_key] = data
    missing = sum(len(v) for v in wanted.values())
    note = (f"{missing} 件の提出ファイルが見つからないため比較していません / {missing} submission file(s) not "
            f"found, not compared (looked in: {', '.join(str(s) for s in sources) or 'nothing'})"
            if missing else "")
    return found, note


def build(db: str | Path, submissions: str | Path | None = None, release: str | Path | None = None) -> Report:
    conn = gradebook.connect(db, create=False)
    try:
        grades = gradebook.counted(gradebook.grades(conn))     # an anonymous copy of a named file is not a second student
        notebooks, note = load_notebooks(conn, grades, submissions)
        triage = gradebook.triage(grades, conn)
    finally:
        conn.close()
    report = Report(grades, triage=triage, names={g.student_key: who(g) for g in grades})
    release = Path(release) if release else assignment.current().release_notebook
    if not release.is_file():
        note = " ".join(filter(None, [note, f"配布ノートブック {release} がないため、テンプレートを差し引かずに比較しました / "
                                            "no release notebook: the template was not subtracted"]))
        release = None
    report.similarity_flags = similarity.find_similar(notebooks, release)
    report.similarity_note = note
    return report


# --- HTML -------------------------------------------------------------------------------------------------
_CSS = """
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif; margin: 2em auto;
       max-width: 75em; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #446; } h2 { margin-top: 2em; border-left: 5px solid #4a6fa5; padding-left: .4em; }
table { border-collapse: collapse; margin: .5em 0 1em; } td, th { border: 1px solid #bbb; padding: .25em .6em; }
th { background: #eef; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: .5em 0; } .note { color: #555; font-size: .9em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
table.sbs td { vertical-align: top; width: 50%; } pre.code { font-size: .8em; margin: 0; white-space: pre-wrap; }
pre.code span.hit { background: #ffe08a; display: inline-block; width: 100%; }
"""


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _table(head: list[str], rows: list[list], stats: list[list[str | None]] | None = None) -> str:
    """A table; cells are (text) or already-formatted; ``stats`` gives a data-stat name per cell (or None)."""
    e = html.escape
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            name = stats[i][j] if stats and stats[i] and j < len(stats[i]) else None
            attr = f' data-stat="{e(name)}"' if name else ""
            cls = ' class="num"' if isinstance(cell, (int, float)) or (name is not None) else ""
            text = shown(cell) if isinstance(cell, (int, float)) else str(cell)
            cells.append(f"<td{cls}{attr}>{e(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _code_block(block) -> str:
    e = html.escape
    rows = []
    for i, line in enumerate(block.lines):
        cls = ' class="hit"' if i in block.marked else ""
        rows.append(f'<span{cls}>{e(f"{block.first_line + i:4d}  {line}")}</span>')
    return f'<pre class="code">セル / cell {block.cell}\n' + "\n".join(rows) + "</pre>"


def _side_by_side(a: str, b: str, flag) -> str:
    """The matching code of a flagged pair, A left and B right, the shared lines highlighted."""
    e = html.escape
    out = [f"<details><summary>{e(a)} ↔ {e(b)}: 一致するコード / matching code ({len(flag.matches)})</summary>"
           '<table class="sbs"><tr>' f"<th>{e(a)}</th><th>{e(b)}</th></tr>"]
    for left, right in flag.matches:
        out.append(f"<tr><td>{_code_block(left)}</td><td>{_code_block(right)}</td></tr>")
    out.append("</table></details>")
    return "".join(out)


def title() -> str:
    """"第3回 課題 クラスレポート / Lecture 3 assignment: class report" (from the assignment's title)."""
    ja, en = assignment.current().title
    return f"{ja} クラスレポート / {en}: class report"


def render(report: Report) -> str:
    sections = [_header, _overview, _statuses, _per_question, _failed_checks, _mnist, _slowest, _overrides,
                _triage, _similarity, _gradebook_flags]
    parts = [part for section in sections for part in section(report)]
    return ('<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title())}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n")


def _header(report: Report) -> list[str]:
    e = html.escape
    return [f"<h1>{e(title())}</h1>",
            f'<p class="note">作成 / generated {e(report.generated_at)} · 課題 / assignment {e(grader_config.ASSIGNMENT)}'
            f" · 満点 / max {shown(gradebook.max_total())} · 学生は名簿の名前と Canvas ユーザー ID で表示 (教員・TA 用) / "
            "students are shown by roster name and Canvas user id (for the teaching staff)</p>"]


def _overview(report: Report) -> list[str]:
    counts, stats = report.counts(), report.score_stats()
    labels = {"students": "学生 / students", "in_roster": "名簿 / in roster", "submitted": "提出 / submitted",
              "graded": "採点済み / graded", "missing": "未提出 / missing", "late": "遅れ / late",
              "excused": "免除 / excused", "overridden": "TA 調整あり / with overrides"}
    stat_labels = {"n": "得点のある学生 / students with a score", "mean": "平均 / mean", "median": "中央値 / median",
                   "min": "最低 / min", "max": "最高 / max"}
    return ["<h2>概要 / Overview</h2>",
            _table(["", "人数 / count"], [[labels[k], v] for k, v in counts.items()], [[None, k] for k in counts]),
            '<div class="grid"><div>' + _table(
                ["最終得点 / final score", ""], [[stat_labels[k], v] for k, v in stats.items()],
                [[None, f"score_{k}"] for k in stats]) + "</div><div>"
            + _img(plots.score_histogram(report.final_scores(), gradebook.max_total()), "score histogram")
            + "</div></div>"]


def _statuses(report: Report) -> list[str]:
    sc = report.status_counts()
    return ["<h2>状態 / Status</h2>",
            '<div class="grid"><div>' + _table(["状態 / status", "人数 / count"], [[k, v] for k, v in sc.items()],
                                               [[None, f"status_{k}"] for k in sc]) + "</div><div>"
            + _img(plots.status_bars(sc), "status counts") + "</div></div>"]


def _per_question(report: Report) -> list[str]:
    questions = report.questions()
    return [f"<h2>設問ごと / Per question</h2><p class=\"note\">採点済み {report.counts()['graded']} 人について "
            "(TA の設問ごとの調整を含む) / over the graded students, question overrides included</p>",
            _table(["設問 / question", "配点 / points", "平均 / mean", "満点率 / full marks"],
                   [[q["qid"], q["max"], q["mean"], _pct(q["full_rate"])] for q in questions],
                   [[None, None, f"q_mean_{q['qid']}", f"q_full_{q['qid']}"] for q in questions]),
            _img(plots.question_bars([q["qid"] for q in questions], [q["mean"] or 0.0 for q in questions],
                                     [q["max"] for q in questions], [q["full_rate"] or 0.0 for q in questions]),
                 "per-question scores")]


def _failed_checks(report: Report) -> list[str]:
    checks = report.failed_checks()
    return ["<h2>よく落ちるチェック / Most frequently failed checks</h2>",
            _table(["設問 / question", "チェック / check", "学生数 / students", "メッセージ例 / example message"],
                   [[c["qid"], c["check"], c["students"], c["message"]] for c in checks],
                   [[None, None, f"check_{c['qid']}_{c['check']}", None] for c in checks])
            if checks else "<p>なし / none</p>"]


def _mnist(report: Report) -> list[str]:
    """Accuracy against the band, and where the notebooks ran; only when some result measured an accuracy."""
    if not report.has_accuracy():
        return []
    e = html.escape
    acc = report.accuracy_stats()
    devices = ", ".join(f"{e(d)} × {n}" for d, n in report.devices().items()) or "–"
    acc_rows = [("n", "精度のある学生 / with an accuracy"), ("at_full", "満点の閾値以上 / at or above full"),
                ("partial", "部分点 / partial"), ("below_floor", "下限未満 / below floor"),
                ("no_value", "精度なし / no accuracy"), ("median", "中央値 / median")]
    return [f"<h2>MNIST 精度 / MNIST accuracy</h2><p class=\"note\">profile {e(acc['profile'])}: "
            f"満点 / full marks ≥ {_pct(acc['full'])}, 部分点 / partial ≥ {_pct(acc['floor'])} · "
            f"実行デバイス / ran on: <span id=\"devices\">{devices}</span></p>",
            '<div class="grid"><div>' + _table(
                ["", "人数 / count"], [[label, _pct(acc[k]) if k == "median" else acc[k]] for k, label in acc_rows],
                [[None, f"acc_{k}"] for k, _ in acc_rows]) + "</div><div>"
            + _img(plots.accuracy_histogram(report.accuracies(), acc["full"], acc["floor"]), "MNIST accuracy")
            + "</div></div>"]


def _slowest(report: Report) -> list[str]:
    slow = report.slowest()
    return ["<h2>遅い提出 / Slowest submissions</h2>",
            _table(["学生 / student", "状態 / status", "採点時間 / grading (s)", "ノートブック / notebook (s)",
                    "最も遅い設問 / slowest question"],
                   [[r["who"], r["status"], r["duration_s"], r["notebook_seconds"] if r["notebook_seconds"]
                     is not None else "–", r["slowest_question"]] for r in slow])
            if slow else "<p>なし / none</p>"]


def _overrides(report: Report) -> list[str]:
    ovs = report.overrides()
    return ["<h2>TA による調整 / Overrides</h2>",
            _table(["学生 / student", "設問 / question", "得点 / score", "免除 / excused", "理由 / reason",
                    "担当 / by", "日時 / at"],
                   [[o["who"], o["question"] or "全体 / whole", o["score"] if o["score"] is not None else "–",
                     "yes" if o["excused"] else "", o["reason"], o["by"], o["at"]] for o in ovs])
            if ovs else "<p>なし / none</p>"]


def _triage(report: Report) -> list[str]:
    return ["<h2>TA が確認する学生 / Students for a TA to look at</h2>",
            _table(["学生 / student", "状態 / status", "内容 / what", "次にすること / next step"],
                   [[r["who"], r["status"], r["what"], r["next"]] for r in report.triage])
            if report.triage else "<p>なし / none</p>"]


def _similarity(report: Report) -> list[str]:
    e = html.escape
    parts = ["<h2>類似フラグ / Similarity flags</h2><p class=\"note\">ほかの学生がほとんど書いていないコードを共有している組です"
             "(名前・コメント・空白・関数の順序・配布テンプレート・クラスの "
             f"{100 * similarity.MAX_SHARE:g} % より多くが書いたコードは除きます)。TA が読むためのもので、自動的な減点では"
             "ありません。 / Pairs that share code few others in the class wrote (names, comments, whitespace, "
             "the order of functions, the release template and code more than "
             f"{100 * similarity.MAX_SHARE:g} % of the class wrote are set aside): for a TA to read, never an "
             f"automatic penalty. Score = shared rare code / the smaller student's rare code (weighted by rarity; "
             f"listed at ≥ {similarity.THRESHOLD:g}, at most {similarity.TOP} pairs).</p>"]
    if report.similarity_note:
        parts.append(f'<p class="note">{e(report.similarity_note)}</p>')
    flags = report.similarity_flags
    name = lambda key: report.names.get(key, key)  # noqa: E731
    parts.append(_table(["学生 A / student A", "学生 B / student B", "スコア / score", "共通の珍しい指紋 / shared rare",
                         "A の珍しい指紋 / rare A", "B の珍しい指紋 / rare B"],
                        [[name(f.a), name(f.b), f.score, f.shared, f.rare_a, f.rare_b] for f in flags],
                        [[None, None, f"sim_{f.a}_{f.b}"] for f in flags])
                 if flags else "<p>なし / none</p>")
    parts += [_side_by_side(name(f.a), name(f.b), f) for f in flags]
    return parts


def _gradebook_flags(report: Report) -> list[str]:
    flagged = report.flagged()
    return ["<h2>成績表のフラグ / Gradebook flags</h2>",
            _table(["学生 / student", "フラグ / flags"], [[w, ", ".join(fl)] for w, fl in flagged])
            if flagged else "<p>なし / none</p>"]


def write(report: Report, out: str | Path) -> Path:
    """The report as one HTML file at ``out`` (folders made as needed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report), encoding="utf-8")
    return out
