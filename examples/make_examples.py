"""Make examples/submissions.zip and examples/roster.csv: a K-LMS-style class of made-up students.

    .venv/bin/python examples/make_examples.py          (writes both files; the output is byte-identical
                                                           for the same solutions/lec03/lec03.ipynb)

Every notebook is derived from the solution notebook (solutions/lec03/lec03.ipynb, made by
``python -m autograder build``); the first is the solution itself, byte for byte. The others carry the
mistakes TAs meet every year, each made by editing one cell of the solution (the script stops if the
solution no longer holds the text it edits). Most of them train the MLP for one epoch instead of two,
as many students do to save time: it is quicker for the demo and still a real run.

    1001 慶應 太郎   the solution as distributed
    1002 三田 花子   RMSE without the square root; the gradient with means instead of sums
    1003 日吉 一郎   correct, submitted LATE
    1004 矢上 健     re-uploaded (K-LMS named it lec03-1.ipynb); minibatches from numpy's global RNG
    1005 湘南 藤子   a cell crashes (a typo: NameError), the cells that need its result fail too
    1006 田中 由紀   mae loops forever on an odd number of samples (never met by the notebook's own
                     cells or the public tests, only by the hidden ones: the call is stopped after 20 s)
    1007 Sato Kenta  the loss as a mean instead of a sum; also attached scratch.ipynb and memo.txt
    1008 Suzuki Aoi  correct, trains two epochs like the solution
    1009 渡辺 さくら  in the roster, submitted nothing

All people are made up. Canvas ids: course 4242, assignment 12345, users 1001-1009, attachments 7000x.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from autograder.ingest.canvas_zip import Attachment, write_submissions_zip  # noqa: E402
from autograder import assignment  # noqa: E402

ASSIGNMENT_ID = 12345
ASSIGNMENT_TITLE = "Lecture 3 assignment"

# (K-LMS "Student" column, sortable name, user id, SIS user id, SIS login id, section)
PEOPLE = [
    ("慶應 太郎", "慶應, 太郎", 1001, "82600001", "keio.taro@keio.jp", "機械学習基礎 月2"),
    ("三田 花子", "三田, 花子", 1002, "82600002", "mita.hanako@keio.jp", "機械学習基礎 月2"),
    ("Hiyoshi, Ichiro", "Hiyoshi, Ichiro", 1003, "82600003", "hiyoshi.ichiro@keio.jp", "機械学習基礎 月2"),
    ("Yagami, Ken", "Yagami, Ken", 1004, "82600004", "yagami.ken@keio.jp", "機械学習基礎 月3"),
    ("湘南 藤子", "湘南, 藤子", 1005, "82600005", "shonan.fujiko@keio.jp", "機械学習基礎 月3"),
    ("田中 由紀", "田中, 由紀", 1006, "82600006", "tanaka.yuki@keio.jp", "機械学習基礎 月3"),
    ("Sato, Kenta", "Sato, Kenta", 1007, "82600007", "sato.kenta@keio.jp", "機械学習基礎 月2"),
    ("Suzuki, Aoi", "Suzuki, Aoi", 1008, "82600008", "suzuki.aoi@keio.jp", "機械学習基礎 月3"),
    ("渡辺 さくら", "渡辺, さくら", 1009, "82600009", "watanabe.sakura@keio.jp", "機械学習基礎 月2"),
]


class SolutionChanged(Exception):
    pass


def edit(nb: dict, old: str, new: str) -> dict:
    """Replace ``old`` by ``new`` in the one code cell that holds it."""
    hits = [c for c in nb["cells"] if c["cell_type"] == "code" and old in "".join(c["source"])]
    if len(hits) != 1:
        raise SolutionChanged(f"{len(hits)} code cells hold {old!r}: update examples/make_examples.py")
    cell = hits[0]
    cell["source"] = _lines("".join(cell["source"]).replace(old, new))
    return nb


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def one_epoch(nb: dict) -> dict:
    return edit(nb, "n_epochs = 2\n", "n_epochs = 1   # 1 エポックで十分そう / one epoch looked enough\n")


def dumps(nb: dict) -> bytes:
    return (json.dumps(nb, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def variants(solution: bytes) -> dict[int, list[tuple[str, bytes]]]:
    """user id -> [(file name, bytes)] of that student's attachments."""
    def fresh() -> dict:
        return json.loads(solution)

    hanako = edit(fresh(), "return float(np.sqrt(mse(y, y_hat)))", "return float(mse(y, y_hat))   # RMSE")
    hanako = edit(hanako, "return float(np.sum(-residual * x)), float(np.sum(-residual))",
                  "return float(np.mean(-residual * x)), float(np.mean(-residual))")
    ken = edit(fresh(), "perm = rng.permutation(n_samples)", "perm = np.random.permutation(n_samples)")
    fujiko = edit(fresh(), "w_ne, b_ne = fit_normal_equation(x_train, y_train)",
                  "w_ne, b_ne = fit_normal_equations(x_train, y_train)")
    yuki = edit(fresh(), """    error = np.asarray(y, dtype=float) - np.asarray(y_hat, dtype=float)
    return float(np.mean(np.abs(error)))""", """    # 2 つずつ足す (丸め誤差が小さい) / pairwise sum (less rounding error)
    errors = [abs(float(a) - float(b)) for a, b in zip(y, y_hat)]
    n = len(errors)
    while len(errors) > 1:
        if len(errors) % 2 == 1:
            continue                    # TODO: 0.0 を足して偶数にする / pad with 0.0 to make it even
        errors = [errors[i] + errors[i + 1] for i in range(0, len(errors), 2)]
    return errors[0] / n""")
    kenta = edit(fresh(), "return float(0.5 * np.sum(residual ** 2))", "return float(0.5 * np.mean(residual ** 2))")
    scratch = fresh()
    scratch["cells"] = [c for c in scratch["cells"] if c["cell_type"] == "markdown"][:2]
    aoi = edit(fresh(), 'print("device:", device)', 'print("使うデバイス / device:", device)')
    return {
        1001: [("lec03.ipynb", solution)],
        1002: [("lec03.ipynb", dumps(one_epoch(hanako)))],
        1003: [("lec03.ipynb", dumps(one_epoch(fresh())))],
        1004: [("lec03-1.ipynb", dumps(one_epoch(ken)))],
        1005: [("lec03.ipynb", dumps(one_epoch(fujiko)))],
        1006: [("lec03.ipynb", dumps(one_epoch(yuki)))],
        1007: [("lec03.ipynb", dumps(one_epoch(kenta))), ("scratch.ipynb", dumps(scratch)),
               ("memo.txt", "問3 の符号がよく分からなかった\n".encode("utf-8"))],
        1008: [("lec03.ipynb", dumps(aoi))],
    }


def attachments(solution: bytes) -> list[Attachment]:
    files = variants(solution)
    out = []
    attachment_id = 70001
    for _display, sortable, uid, *_ in PEOPLE:
        for filename, data in files.get(uid, []):
            out.append(Attachment(sortable, uid, attachment_id, filename, data, late=(uid == 1003)))
            attachment_id += 1
    return out


def roster_csv() -> bytes:
    """The gradebook CSV as K-LMS exports it (BOM, Points Possible row, score columns it adds)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{ASSIGNMENT_TITLE} ({ASSIGNMENT_ID})",
                "Current Score", "Unposted Current Score", "Final Score", "Unposted Final Score"])
    w.writerow(["    Points Possible", "", "", "", "", "80.00", "(read only)", "(read only)", "(read only)",
                "(read only)"])
    for display, _sortable, uid, sis, login, section in PEOPLE:
        w.writerow([display, uid, sis, login, section, "", "", "", "", ""])
    return "\ufeff".encode("utf-8") + buf.getvalue().encode("utf-8")


def main(out_dir: Path = HERE, solution_path: Path = assignment.current().solution_notebook) -> int:
    if not solution_path.exists():
        print(f"error: {solution_path} is missing: run 'python -m autograder build' first", file=sys.stderr)
        return 1
    solution = solution_path.read_bytes()
    names = write_submissions_zip(out_dir / "submissions.zip", attachments(solution))
    (out_dir / "roster.csv").write_bytes(roster_csv())
    print(f"wrote {out_dir / 'submissions.zip'} ({len(names)} files) and {out_dir / 'roster.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
