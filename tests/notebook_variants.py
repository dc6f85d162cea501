"""Derive variant notebooks from the solution (or release) notebook, programmatically.

The solution notebook is generated and may change, so nothing here copies its text: a variant is the
current solution with one definition replaced *by name*, cells inserted or appended, cells reordered,
Colab lines added, or the whole file rewritten as nbformat 3. Every helper returns a new notebook (a plain
JSON dict) and leaves its argument alone, so they chain:

    nb = replace_def(solution(), "rmse", '''
        def rmse(y, y_hat):
            return mse(y, y_hat)
    ''')
    nb = without_mlp(nb)

``without_mlp`` drops the PyTorch part (about 15 s of MNIST training per grade with the small profile):
use it for variants that do not target the mlp question, and then assert nothing about mlp.
"""
from __future__ import annotations

import ast
import copy
import json
import re
import textwrap
from pathlib import Path

import nbformat

from autograder import layout
from autograder import assignment

NUMPY_QUESTIONS = ("normal_equation", "loss", "gradient", "gd_step", "minibatches", "sgd", "metrics")
ALL_QUESTIONS = NUMPY_QUESTIONS + ("mlp",)
# the question each graded name belongs to
QUESTION_OF = {
    "fit_normal_equation": "normal_equation", "predict": "loss", "loss": "loss", "gradient": "gradient",
    "gd_step": "gd_step", "minibatch_indices": "minibatches", "train_sgd": "sgd", "mse": "metrics",
    "rmse": "metrics", "mae": "metrics", "get_device": "mlp", "MLP": "mlp", "train_one_epoch": "mlp",
    "evaluate": "mlp",
}


# --- reading and writing ---------------------------------------------------------------------------------
def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def solution() -> dict:
    """A fresh copy of the solution notebook as it is now."""
    return load(assignment.current().solution_notebook)


def release() -> dict:
    """A fresh copy of the release notebook (what students download: stubs only)."""
    return load(assignment.current().release_notebook)


def dumps(nb: dict) -> bytes:
    return json.dumps(nb, ensure_ascii=False, indent=1).encode("utf-8")


def write(nb: dict, path: Path) -> Path:
    path = Path(path)
    path.write_bytes(dumps(nb))
    return path


# --- cells -----------------------------------------------------------------------------------------------
def _src(cell) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _clean(source: str) -> str:
    return textwrap.dedent(source).strip("\n") + "\n"


def code_cell(source: str, **metadata) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": dict(metadata), "outputs": [],
            "source": _clean(source)}


def markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _clean(text)}


def code_sources(nb: dict) -> list[str]:
    return [_src(c) for c in nb["cells"] if c.get("cell_type") == "code"]


def _defs(source: str) -> dict[str, tuple[int, int]]:
    """Top-level ``def``/``class`` names of a cell -> (first line, last line), 0-based, decorators included."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = (first - 1, node.end_lineno - 1)
    return out


def cell_defining(nb: dict, name: str) -> int:
    """Index (in nb["cells"]) of the last code cell that defines ``name`` at top level."""
    found = [i for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code" and name in _defs(_src(c))]
    if not found:
        raise KeyError(f"no code cell defines {name!r}")
    return found[-1]


def definition(nb: dict, name: str) -> str:
    """The source text of the top-level definition of ``name``."""
    i = cell_defining(nb, name)
    lines = _src(nb["cells"][i]).splitlines()
    first, last = _defs(_src(nb["cells"][i]))[name]
    return "\n".join(lines[first:last + 1]) + "\n"


def replace_def(nb: dict, name: str, source: str) -> dict:
    """Replace the definition of ``name`` (in the cell that defines it) by ``source``."""
    nb = copy.deepcopy(nb)
    i = cell_defining(nb, name)
    cell = nb["cells"][i]
    lines = _src(cell).splitlines()
    first, last = _defs(_src(cell))[name]
    new = _clean(source).rstrip("\n").splitlines()
    cell["source"] = "\n".join(lines[:first] + new + lines[last + 1:]) + "\n"
    cell["outputs"], cell["execution_count"] = [], None
    return nb


def edit_def(nb: dict, name: str, old: str, new: str) -> dict:
    """Replace ``old`` by ``new`` inside the definition of ``name`` (``old`` must occur there exactly once)."""
    text = definition(nb, name)
    if text.count(old) != 1:
        raise KeyError(f"{old!r} occurs {text.count(old)} times in the definition of {name!r}")
    return replace_def(nb, name, text.replace(old, new))


def blank(nb: dict, *names: str) -> dict:
    """Put the release notebook's stub (``raise NotImplementedError()``) in place of each definition."""
    stubs = release()
    for name in names:
        nb = replace_def(nb, name, definition(stubs, name))
    return nb


def replace_text(nb: dict, old: str, new: str) -> dict:
    """Replace ``old`` by ``new`` in the one code cell that contains it (exactly one occurrence)."""
    nb = copy.deepcopy(nb)
    hits = [c for c in nb["cells"] if c.get("cell_type") == "code" and old in _src(c)]
    if len(hits) != 1 or _src(hits[0]).count(old) != 1:
        raise KeyError(f"{old!r} occurs {sum(_src(c).count(old) for c in hits)} times in the code cells")
    hits[0]["source"] = _src(hits[0]).replace(old, new)
    return nb


def replace_cell(nb: dict, marker: str, source: str) -> dict:
    """Replace the whole of the one code cell that contains ``marker`` by ``source``."""
    nb = copy.deepcopy(nb)
    hits = [c for c in nb["cells"] if c.get("cell_type") == "code" and marker in _src(c)]
    if len(hits) != 1:
        raise KeyError(f"{marker!r} occurs in {len(hits)} code cells")
    hits[0]["source"] = _clean(source)
    hits[0]["outputs"], hits[0]["execution_count"] = [], None
    return nb


def insert_cells(nb: dict, index: int, *sources: str) -> dict:
    """Insert code cells before ``nb["cells"][index]`` (negative indices count from the end)."""
    nb = copy.deepcopy(nb)
    if index < 0:
        index += len(nb["cells"])
    nb["cells"][index:index] = [code_cell(s) for s in sources]
    return nb


def append_cells(nb: dict, *sources: str) -> dict:
    return insert_cells(nb, len(nb["cells"]), *sources)


def prepend_cells(nb: dict, *sources: str) -> dict:
    """Code cells before every other cell (even the set-up cell)."""
    return insert_cells(nb, 0, *sources)


def insert_after_def(nb: dict, name: str, *sources: str) -> dict:
    """Code cells right after the cell that defines ``name``."""
    return insert_cells(nb, cell_defining(nb, name) + 1, *sources)


def insert_before_def(nb: dict, name: str, *sources: str) -> dict:
    return insert_cells(nb, cell_defining(nb, name), *sources)


def move_def_after(nb: dict, name: str, anchor: str) -> dict:
    """Move ``name``'s definition (its text only) into a new cell after the cell defining ``anchor``:
    a helper defined after the cells that use it."""
    text = definition(nb, name)
    nb = replace_def(nb, name, "pass  # moved further down\n")
    return insert_after_def(nb, anchor, text)


def duplicate_cells(nb: dict, predicate=None) -> dict:
    """Every code cell (or those for which ``predicate(source)`` holds) twice in a row."""
    nb = copy.deepcopy(nb)
    out = []
    for cell in nb["cells"]:
        out.append(cell)
        if cell.get("cell_type") == "code" and (predicate is None or predicate(_src(cell))):
            out.append(copy.deepcopy(cell))
    nb["cells"] = out
    return nb


def reorder(nb: dict, order: list[int]) -> dict:
    """The cells in the given order (indices into nb["cells"]; cells left out are dropped)."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [nb["cells"][i] for i in order]
    return nb


def drop_cells(nb: dict, predicate) -> dict:
    """Without the code cells whose source satisfies ``predicate(source)``."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if not (c.get("cell_type") == "code" and predicate(_src(c)))]
    return nb


def _mlp_span(nb: dict) -> tuple[int, int]:
    """The cells of the PyTorch part: from the first cell tagged "mlp" to the last cell before the
    notebook's closing ``grader.check_all()`` cell."""
    tagged = [i for i, c in enumerate(nb["cells"]) if "mlp" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise KeyError("the notebook has no cell tagged 'mlp'")
    end = len(nb["cells"])
    for i in range(len(nb["cells"]) - 1, tagged[0], -1):
        if "check_all" in _src(nb["cells"][i]):
            end = i
            break
    return tagged[0], end


def without_mlp(nb: dict) -> dict:
    """Without the PyTorch code cells (no MNIST training: a grade takes ~5 s instead of ~20 s).
    The mlp question then scores 0; assert nothing about it."""
    nb = copy.deepcopy(nb)
    start, end = _mlp_span(nb)
    nb["cells"] = nb["cells"][:start] + [c for c in nb["cells"][start:end] if c.get("cell_type") != "code"] \
        + nb["cells"][end:]
    return nb


SETUP_MARK = "_import_otter"     # the set-up cell that writes the public tests and imports otter (~8 s)
SELF_CHECK = re.compile(r"^\s*grader\.check(_all)?\(")


def without_otter(nb: dict) -> dict:
    """Without the set-up cell (public tests, ``import otter``: about 8 s of every grade in the sandbox) and
    the ``grader.check`` self-check cells that need it. Nothing graded depends on them."""
    return drop_cells(nb, lambda s: SETUP_MARK in s or bool(SELF_CHECK.match(s)))


def lean(nb: dict) -> dict:
    """The NumPy part alone (``without_mlp`` and ``without_otter``): a grade takes ~5 s. Use it for
    variants about the NumPy questions or the wire; then assert nothing about mlp."""
    return without_otter(without_mlp(nb))


def with_epochs(nb: dict, n_epochs: int) -> dict:
    """The MNIST training cell with another epoch count."""
    return _sub_one(nb, r"^n_epochs = \d+$", f"n_epochs = {n_epochs}")


def _sub_one(nb: dict, pattern: str, replacement: str) -> dict:
    nb = copy.deepcopy(nb)
    rx = re.compile(pattern, re.M)
    hits = [c for c in nb["cells"] if c.get("cell_type") == "code" and rx.search(_src(c))]
    if len(hits) != 1:
        raise KeyError(f"{pattern!r} matches {len(hits)} code cells")
    hits[0]["source"] = rx.sub(replacement, _src(hits[0]), count=1)
    return nb


def with_colab_lines(nb: dict) -> dict:
    """What a notebook saved from Colab typically holds: drive mounting, ``!pip``/``%pip`` lines,
    ``%matplotlib inline``, a ``!nvidia-smi``."""
    nb = insert_cells(nb, 0, """
        from google.colab import drive
        drive.mount('/content/drive')
        """, """
        !pip install otter-grader
        %pip install x
        !nvidia-smi
        """)
    nb = insert_after_def(nb, "fit_normal_equation", """
        %matplotlib inline
        import os
        from google.colab import files
        print(os.getcwd())
        """)
    nb["metadata"].setdefault("colab", {})["provenance"] = [{"file_id": "1AbC", "timestamp": 1700000000000}]
    return nb


def to_nbformat3(nb: dict) -> dict:
    """The same notebook as an nbformat-3 file (``worksheets`` and ``input``)."""
    node = nbformat.reads(json.dumps(nb), as_version=4)   # sources as strings, as the v3 downgrade wants
    old = nbformat.convert(node, 3)
    return json.loads(nbformat.writes(old, version=3))


def stored_outputs(nb: dict, text: str) -> dict:
    """Every code cell claims (in its stored outputs) to have printed ``text``."""
    nb = copy.deepcopy(nb)
    for n, cell in enumerate(c for c in nb["cells"] if c.get("cell_type") == "code"):
        cell["execution_count"] = n + 1
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": text}]
    return nb


# --- reading results -------------------------------------------------------------------------------------
def scores(result: dict) -> dict[str, float]:
    return {q: v["score"] for q, v in result["questions"].items()}


def failed_messages(result: dict, question: str) -> list[str]:
    return [c["message"] for c in result["questions"][question]["checks"] if not c["passed"]]


def full(question: str) -> float:
    from autograder.grade import config

    return float(config().POINTS[question])


# --- grading in a separate process (for attacks that may hang or kill the grader) -------------------------
def sandbox_pids(marker: str) -> list[int]:
    """Pids of the sandbox processes (jail.py) started for the submission whose path contains ``marker``
    (the jail's command line names the submission file)."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if "jail.py" in cmdline and marker in cmdline:
            pids.append(int(entry))
    return pids


def kill_sandboxes(marker: str) -> None:
    """SIGKILL the jail processes of our own submission ``marker`` (those this test started), one by one."""
    import os
    import signal

    for pid in sandbox_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def grade_subprocess(path: Path, timeout: float, limits: dict | None = None) -> dict | None:
    """grade_notebook(path) in a child Python; its result, or None when it did not return within
    ``timeout`` seconds (then the grader process and the sandboxes of ``path`` are killed).

    ``limits`` overrides entries of grader_config.LIMITS in that process only (a hang test need not wait
    the real 300 s cell limit to show that the limit holds)."""
    import os
    import subprocess
    import sys

    code = ("import json, sys\nfrom autograder import grade\n"
            "cfg = grade.config()\ncfg.LIMITS = dict(cfg.LIMITS, **json.loads(sys.argv[2]))\n"
            "r = grade.grade_notebook(sys.argv[1])\nsys.stdout.write('\\nRESULT ' + json.dumps(r))\n")
    env = dict(os.environ, PYTHONPATH=str(layout.ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), json.dumps(limits or {})],
                            cwd=layout.ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        kill_sandboxes(str(path))
        return None
    text = out.decode("utf-8", "replace")
    if "\nRESULT " not in text:
        raise AssertionError(f"grade_notebook raised instead of returning a result:\n"
                             f"{err.decode('utf-8', 'replace')[-3000:]}")
    return json.loads(text.rsplit("\nRESULT ", 1)[1])
