"""The student release and the solutions, generated from one master (``python -m autograder build``).

The master ``source/<id>/<id>.ipynb`` (lec03 here) holds the solutions between nbgrader's ``### BEGIN SOLUTION`` and
``### END SOLUTION`` markers, in cells with nbgrader solution metadata. From it this module writes

- ``assignments/<id>/<id>.ipynb``: the release. nbgrader's own preprocessors (the ones its
  ``generate_assignment`` runs: LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums)
  replace every solution region by ``raise NotImplementedError()`` and clear the outputs;
- ``assignments/<id>/tests/<question>.py``: the public otter tests (the assignment folder's ``public_tests/``);
- ``solutions/<id>/<id>.ipynb``: what a perfect student submits: the release with the solutions in
  place of the stubs (markers removed, outputs cleared, the release's metadata);
- ``solutions/<id>/reference.py``: the cells tagged ``reference`` (the functions the hidden tests call), importable
  without torch.

Numbers the notebook states (``{{FULL_ACCURACY}}``, ``{{CELL_TIMEOUT_S}}``, ``{{POINTS:sgd}}`` ...) come from
``grader_config.py`` at build time, and so does the rubric (``{{RUBRIC:metrics}}`` under a question's
heading, ``{{RUBRIC_TABLE}}`` for all questions: ``POINTS`` and ``PARTS``). ``{{PACKAGES}}`` and
``{{VERSION:torch}}`` name the packages the grader offers, with their pins in ``requirements.txt``. The first code cell gets the public tests and the assignment's public files (``co2.csv``) embedded
(each with its sha256, UTF-8): on Colab, where only the notebook is opened, that cell writes them to disk, because
otter refuses tests kept in notebook metadata there. The output is a pure function of the inputs: sorted
JSON keys, fixed cell ids, no timestamps; ``--check`` reports files that a build would change.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import re
from pathlib import Path

import nbformat
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, ClearSolutions, ComputeChecksums, LockCells

from autograder import assignment
from autograder.atomic import write_atomically
from autograder import config as config_loader
from autograder import layout

CODE_STUB = "# YOUR CODE HERE / ここにコードを書いてください\nraise NotImplementedError()"
BEGIN_SOLUTION = ClearSolutions.begin_solution_delimeter.default_value   # "BEGIN SOLUTION"
END_SOLUTION = ClearSolutions.end_solution_delimeter.default_value       # "END SOLUTION"
REFERENCE_TAG = "reference"
EMBED_LINE = "_FILES = {}  # {{EMBEDDED_FILES}}"
TESTS_SUBDIR = "tests"
# the packages a submission may import besides the standard library: the grader's sandbox has them (pinned
# in requirements.txt; the notebook lists them)
GRADER_PACKAGES = ("numpy", "matplotlib", "torch", "torchvision", "tqdm", "pandas", "scipy", "scikit-learn",
                   "seaborn")
REQUIREMENTS = layout.ROOT / "requirements.txt"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)(?::([a-z_0-9]+))?\}\}")
# what generated notebooks keep: cell metadata keys, and the notebook metadata (Colab opens it with a GPU)
CELL_METADATA_KEYS = frozenset({"nbgrader", "tags", "cellView", "jupyter", "deletable", "editable"})
NOTEBOOK_METADATA = {
    "colab": {"provenance": []},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
# ... and for an assignment that declares COLAB_GPU (lec03: the MNIST MLP trains on Colab's T4)
GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
BANNER = '''"""Reference solution of the numpy part of {id}. GENERATED FILE: do not edit.

Written by ``python -m autograder build`` from the cells tagged "reference" in source/{id}/{id}.ipynb.
"""
import numpy as np
'''


class BuildError(RuntimeError):
    pass


# --- inputs ------------------------------------------------------------------------------------------------

def load_config():
    """grader_config, the one configuration object (autograder.config: loaded from its path, validated)."""
    return config_loader.load()


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.10g}%"


def pinned_versions() -> dict[str, str]:
    """package -> version, from the ``name==version`` lines of requirements.txt."""
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            package, version = (part.strip() for part in line.split("==", 1))
            pins[package.lower()] = version
    return pins


def _parts(cfg, question: str) -> dict[str, float]:
    parts = dict(getattr(cfg, "PARTS", {}).get(question) or {})
    if parts and abs(sum(parts.values()) - cfg.POINTS[question]) > 1e-9:
        raise BuildError(f"grader_config.PARTS[{question!r}] sums to {sum(parts.values()):g}, "
                         f"not POINTS[{question!r}] = {cfg.POINTS[question]:g}")
    return parts


def _part_label(part: str, language: int) -> str:
    labels = assignment.current().part_labels
    return labels[part][language] if part in labels else f"`{part}`"


def rubric(cfg, question: str) -> str:
    """The rubric line of one question, in Japanese and English."""
    parts = _parts(cfg, question)
    points = f"{cfg.POINTS[question]:g}"
    if not parts:
        return (f"**配点 {points} 点**: この問のテストをすべて通ったときに得点します / "
                f"**{points} points** when all of the question's checks pass.")
    ja = "、".join(f"{_part_label(part, 0)} {p:g} 点" for part, p in parts.items())
    en = ", ".join(f"{_part_label(part, 1)} {p:g}" for part, p in parts.items())
    return (f"**配点 {points} 点** ({ja}): 各部分はその部分のテストで採点します / "
            f"**{points} points** ({en}): each part scores on its own checks.")


def rubric_table(cfg) -> str:
    rows = ["| 問 / Q | 採点される関数 / graded | 配点 / points |", "|---|---|---|"]
    for question in cfg.QUESTIONS:
        parts = _parts(cfg, question)
        spec = assignment.current().question(question)
        number = spec.number if spec else question
        if parts:
            what = ", ".join(f"{_part_label(part, 1)}: {p:g}" for part, p in parts.items())
        else:
            graded = ", ".join(f"`{f}`" for f in (spec.functions if spec and spec.functions else (question,)))
            what = f"{graded} (1 部分 / one part)"
        rows.append(f"| 問{number} / Q{number} | {what} | {cfg.POINTS[question]:g} |")
    return "\n".join(rows)


def placeholder_values(cfg) -> dict[str, str]:
    values = {
        "CELL_TIMEOUT_S": str(cfg.LIMITS["cell_timeout_s"]),
        "NOTEBOOK_TIMEOUT_S": str(cfg.LIMITS["notebook_timeout_s"]),
        "TORCH_THREADS": str(cfg.TORCH_THREADS),
        "TOTAL_POINTS": f"{sum(cfg.POINTS.values()):g}",
    }
    if "full" in getattr(cfg, "ACCURACY", {}):
        values["FULL_ACCURACY"] = _percent(cfg.ACCURACY["full"]["full"])
        values["FLOOR_ACCURACY"] = _percent(cfg.ACCURACY["full"]["floor"])
    values.update({f"POINTS:{q}": f"{p:g}" for q, p in cfg.POINTS.items()})
    values.update({f"RUBRIC:{q}": rubric(cfg, q) for q in cfg.QUESTIONS})
    values["RUBRIC_TABLE"] = rubric_table(cfg)
    pins = pinned_versions()
    unpinned = [p for p in GRADER_PACKAGES if p not in pins]
    if unpinned:
        raise BuildError(f"requirements.txt does not pin {unpinned} (the notebook says the grader offers them)")
    values["PACKAGES"] = ", ".join(GRADER_PACKAGES)
    values.update({f"VERSION:{p.replace('-', '_')}": pins[p] for p in GRADER_PACKAGES})
    return values


def utf8_test_source(source: str, name: str) -> str:
    """The test file as students get it: UTF-8, Japanese as written (a student opens these files).

    otter-grader 7.0.0 reads test files with ``open(path)``, i.e. in the locale's encoding. That is UTF-8 on
    Colab, Linux and macOS; on a Japanese Windows it is cp932, which cannot read them back. The set-up cell
    checks exactly that (reads each file as otter would) and, where it fails, runs the public tests with its
    own small runner, which reads UTF-8.
    """
    if source.startswith("\ufeff"):
        raise BuildError(f"public test {name} starts with a byte-order mark")
    try:
        ast.parse(source)
    except SyntaxError as exc:
        raise BuildError(f"public test {name} does not parse: {exc}") from exc
    return source


def public_tests(cfg) -> dict[str, str]:
    """question -> the test file's text (UTF-8), for every question of grader_config, in its order."""
    tests = {}
    for q in cfg.QUESTIONS:
        path = assignment.current().public_tests_dir / f"{q}.py"
        if not path.is_file():
            raise BuildError(f"missing public test {path}")
        text = utf8_test_source(path.read_text(encoding="utf-8"), path.name)
        if BEGIN_SOLUTION in text or END_SOLUTION in text:
            raise BuildError(f"{path} contains a solution marker")
        tests[q] = text
    return tests


def public_file_texts() -> dict[str, str]:
    """The assignment's files for the sandbox and the students (``co2.csv``), each checked against its
    generator."""
    task = assignment.current()
    texts = {}
    for name, generate in task.file_generators.items():
        path = task.public_files[name]
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        if text != generate():
            raise BuildError(f"{path} differs from its generator {generate.__module__}.{generate.__name__}: "
                             f"run python -m {generate.__module__}")
        texts[name] = text
    return texts


# --- the embedded files of the first code cell -------------------------------------------------------------

def embedded_files_literal(files: dict[str, str]) -> str:
    """Python source ``_FILES = {path: (sha256, text), ...}`` whose value evaluates back to ``files``."""
    parts = ["_FILES = {"]
    for path, text in files.items():
        if "'''" in text or text.endswith("\\"):
            raise BuildError(f"{path} cannot be embedded as a raw string")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        parts.append(f'    "{path}": ("{digest}", r\'\'\'{text}\'\'\'),')
    parts.append("}")
    literal = "\n".join(parts)
    value = ast.literal_eval(literal.split("=", 1)[1].strip())
    if {p: t for p, (_, t) in value.items()} != files:
        raise BuildError("the embedded files do not evaluate back to themselves")
    return literal


# --- notebook transformations ------------------------------------------------------------------------------

def _normalise(nb):
    nb = copy.deepcopy(nb)
    metadata = dict(NOTEBOOK_METADATA, **(GPU_METADATA if assignment.current().colab_gpu else {}))
    nb.metadata = nbformat.from_dict(copy.deepcopy(metadata))
    for cell in nb.cells:
        for key in list(cell.metadata):
            if key not in CELL_METADATA_KEYS:
                del cell.metadata[key]
        cell.pop("attachments", None)
    return nb


def _substitute(nb, values: dict[str, str], embedded: str):
    """Fill the placeholders from grader_config and put the embedded files into the first code cell."""
    def fill(text: str, cell_id: str) -> str:
        def replace(match):
            key = match.group(1) + (f":{match.group(2)}" if match.group(2) else "")
            if key not in values:
                raise BuildError(f"unknown placeholder {match.group(0)} in cell {cell_id}")
            return values[key]
        return PLACEHOLDER.sub(replace, text)

    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is None or first_code.source.count(EMBED_LINE) != 1:
        raise BuildError(f"the master's first code cell must hold the line {EMBED_LINE!r} once")
    for cell in nb.cells:
        if cell is first_code:
            before, after = cell.source.split(EMBED_LINE)
            cell.source = fill(before, cell.id) + embedded + fill(after, cell.id)
        elif EMBED_LINE in cell.source:
            raise BuildError(f"{EMBED_LINE!r} belongs in the first code cell only (cell {cell.id})")
        else:
            cell.source = fill(cell.source, cell.id)
    return nb


def strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if BEGIN_SOLUTION not in line and END_SOLUTION not in line)


def solution_lines(source: str) -> list[str]:
    """The lines of a cell between the markers (stripped)."""
    found, inside = [], False
    for line in source.split("\n"):
        if BEGIN_SOLUTION in line:
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif inside:
            found.append(line.strip())
    return found


def make_release(nb):
    nb = copy.deepcopy(nb)
    resources: dict = {}
    for pp in (LockCells(), ClearSolutions(code_stub={"python": CODE_STUB}), ClearOutput(),
               CheckCellMetadata(), ComputeChecksums()):
        nb, resources = pp.preprocess(nb, resources)
    return nb


def make_solution(nb, release):
    nb = copy.deepcopy(nb)
    nb, _ = ClearOutput().preprocess(nb, {})
    for cell, released in zip(nb.cells, release.cells, strict=True):
        cell.source = strip_markers(cell.source)
        cell.metadata = copy.deepcopy(released.metadata)
    return nb


def make_reference(nb) -> str:
    cells = [c for c in nb.cells if REFERENCE_TAG in c.metadata.get("tags", [])]
    if not cells:
        raise BuildError(f"no cell of the master is tagged {REFERENCE_TAG!r}")
    task = assignment.current()
    text = BANNER.format(id=task.id) + "\n\n" + "\n\n\n".join(strip_markers(c.source).strip("\n") for c in cells) + "\n"
    tree = ast.parse(text)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    if imported - {"numpy"}:
        raise BuildError(f"reference cells import {sorted(imported - {'numpy'})}: only numpy is allowed")
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    if set(task.called) - defined:
        raise BuildError(f"reference cells do not define {sorted(set(task.called) - defined)}")
    return text


def _notebook_bytes(nb) -> bytes:
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


# --- the build ---------------------------------------------------------------------------------------------

def read_master():
    return nbformat.read(assignment.current().source_notebook, as_version=4)


def render() -> dict[Path, bytes]:
    """Every generated file: path relative to the course root (the folder of grader_config.py) -> bytes."""
    cfg = load_config()
    task = assignment.current()
    tests = public_tests(cfg)
    files = {f"{TESTS_SUBDIR}/{q}.py": text for q, text in tests.items()}
    files.update(public_file_texts())

    master = _normalise(read_master())
    nb = _substitute(master, placeholder_values(cfg), embedded_files_literal(files))
    release = make_release(nb)
    solution = make_solution(nb, release)

    rel = lambda p: p.relative_to(task.course_root)  # noqa: E731
    out = {
        rel(task.release_notebook): _notebook_bytes(release),
        rel(task.solution_notebook): _notebook_bytes(solution),
        rel(task.reference_module): make_reference(solution).encode("utf-8"),
    }
    for q, text in tests.items():
        out[rel(task.release_dir / TESTS_SUBDIR / f"{q}.py")] = text.encode("utf-8")
    return out


def _leftovers(root: Path, outputs: dict[Path, bytes]) -> list[Path]:
    """Files in the release's tests folder that the build no longer makes."""
    task = assignment.current()
    folder = root / (task.release_dir / TESTS_SUBDIR).relative_to(task.course_root)
    wanted = {root / p for p in outputs}
    return sorted(p for p in folder.glob("*") if p.is_file() and p not in wanted) if folder.is_dir() else []


def build(check: bool = False, out_root: Path | None = None) -> list[Path]:
    """Write the generated files under ``out_root`` (the repository by default).

    Returns the files that differed (written, or removed when the build no longer makes them); with
    ``check`` nothing is written and the list says what a build would change.
    """
    root = Path(out_root) if out_root is not None else assignment.current().course_root
    outputs = render()
    changed = [root / p for p, data in outputs.items()
               if not (root / p).is_file() or (root / p).read_bytes() != data]
    leftovers = _leftovers(root, outputs)
    if check:
        return changed + leftovers
    for path in changed:  # whole files only: a grader loading reference.py meanwhile never reads half of one
        write_atomically(path, lambda tmp, data=outputs[path.relative_to(root)]: tmp.write_bytes(data))
    for path in leftovers:
        path.unlink()
    return changed + leftovers
