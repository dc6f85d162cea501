"""An assignment as data: the one folder the engine reads for everything a lecture adds.

``grader_config.ASSIGNMENT`` names the assignment; its grading folder is ``autograder/course/<id>/`` (or
``grader_config.ASSIGNMENT_DIR``, relative to the folder of grader_config.py). The folder holds

- ``assignment.py``: question ids and titles (ja/en), the graded names, which helpers are oracles while
  which function runs, the files and data sets the sandbox gets, labels of parts that are not functions;
- ``hidden_tests/<question>.py`` and ``public_tests/<question>.py``: otter-grader test files;
- ``checks.py`` (optional): the assignment's own checks, on top of ``autograder.check.vocabulary``; the
  hidden tests receive them as ``check``;
- ``probes.py`` (optional): code the sandboxed child runs for the hidden tests (``probe_<name>(harness,
  request)`` functions). It is sent to the child as text: nothing secret may live there.

The master notebook, the release and the solutions sit where the course keeps them, next to
grader_config.py: ``source/<id>/<id>.ipynb``, ``assignments/<id>/``, ``solutions/<id>/``. Numbers (points,
parts, tolerances, limits) stay in grader_config.py. Nothing in the engine names a lecture's function or
question: it asks this object.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from autograder import layout

KINDS = ("function", "class", "module")   # what the child keeps of a graded name after each cell


class AssignmentError(ValueError):
    """An assignment folder the engine cannot work with (says which file and what)."""


@dataclass(frozen=True)
class Question:
    id: str
    number: int
    title_ja: str
    title_en: str
    functions: tuple[str, ...]          # the graded names this question judges (the rubric lists them)

    @property
    def title(self) -> str:
        """"正規方程式 / normal equation" (one of them when both read the same)."""
        return self.title_ja if self.title_ja == self.title_en else f"{self.title_ja} / {self.title_en}"


@dataclass(frozen=True)
class Assignment:
    id: str
    folder: Path                        # the grading folder (assignment.py, hidden_tests/, ...)
    course_root: Path                   # where source/, assignments/ and solutions/ live
    module: ModuleType = field(repr=False)
    questions: tuple[Question, ...]

    # -- paths -------------------------------------------------------------------------------------------
    @property
    def source_notebook(self) -> Path:
        return self.course_root / "source" / self.id / f"{self.id}.ipynb"

    @property
    def release_dir(self) -> Path:
        return self.course_root / "assignments" / self.id

    @property
    def release_notebook(self) -> Path:
        return self.release_dir / f"{self.id}.ipynb"

    @property
    def solution_dir(self) -> Path:
        return self.course_root / "solutions" / self.id

    @property
    def solution_notebook(self) -> Path:
        return self.solution_dir / f"{self.id}.ipynb"

    @property
    def reference_module(self) -> Path:
        return self.solution_dir / "reference.py"

    @property
    def hidden_tests_dir(self) -> Path:
        return self.folder / "hidden_tests"

    @property
    def public_tests_dir(self) -> Path:
        return self.folder / "public_tests"

    # -- what the assignment declares ------------------------------------------------------------------
    @property
    def title(self) -> tuple[str, str]:
        return tuple(self.module.TITLE)

    @property
    def called(self) -> tuple[str, ...]:
        """Graded functions the hidden tests call by name (a stand-in each); reference.py defines them."""
        return tuple(getattr(self.module, "CALLED", ()))

    @property
    def probed(self) -> dict[str, str]:
        """Graded names reached only through probes, with their kind (function, class, module)."""
        return dict(getattr(self.module, "PROBED", {}))

    @property
    def graded_names(self) -> tuple[str, ...]:
        return self.called + tuple(self.probed)

    @property
    def kinds(self) -> dict[str, str]:
        return {**{name: "function" for name in self.called}, **self.probed}

    @property
    def calls(self) -> dict[str, tuple[str, ...]]:
        """function -> the helpers it may call; while it runs they are oracles (the reference's) or the
        student's own (see autograder.check.runner)."""
        return {k: tuple(v) for k, v in getattr(self.module, "CALLS", {}).items()}

    def oracles(self, reference: ModuleType) -> dict:
        make = getattr(self.module, "oracles", None)
        return make(reference) if make else {}

    @property
    def public_files(self) -> dict[str, Path]:
        """Files of the release folder every sandbox gets in its home (``co2.csv``)."""
        return {name: self.release_dir / name for name in getattr(self.module, "PUBLIC_FILES", {})}

    @property
    def file_generators(self) -> dict:
        """name -> a function that writes the file's text (the build checks the committed file against it)."""
        return dict(getattr(self.module, "PUBLIC_FILES", {}))

    @property
    def datasets(self) -> tuple[str, ...]:
        """Shared data sets the sandbox sees read-only and the hidden tests get (``mnist``)."""
        return tuple(getattr(self.module, "DATASETS", ()))

    @property
    def probe_calls(self) -> tuple[str, str]:
        """What the probe calls do, for the timeout explanation (ja, en): lec03 "MNIST の学習・評価"."""
        return tuple(getattr(self.module, "PROBE_CALLS", ("モデルなどの呼び出し", "the calls through probes")))

    @property
    def colab_gpu(self) -> bool:
        """Whether the release opens on Colab with a GPU (its notebook metadata asks for a T4)."""
        return bool(getattr(self.module, "COLAB_GPU", False))

    @property
    def part_labels(self) -> dict[str, tuple[str, str]]:
        return dict(getattr(self.module, "PART_LABELS", {}))

    @property
    def checks_module(self) -> Path | None:
        path = self.folder / "checks.py"
        return path if path.is_file() else None

    @property
    def probes_file(self) -> Path | None:
        path = self.folder / "probes.py"
        return path if path.is_file() else None

    @functools.cached_property
    def probes_code(self) -> str:
        """The text of probes.py ("" without one), sent to every child; read once (``load`` compiled it)."""
        return self.probes_file.read_text(encoding="utf-8") if self.probes_file else ""

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)

    def question_title(self, qid: str) -> str:
        q = self.question(qid)
        return q.title if q else qid


def load_module(name: str, path: Path) -> ModuleType:
    """The Python file ``path`` (trusted: the grader's own) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module        # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=8)
def load(folder: Path, course_root: Path) -> Assignment:
    """The assignment in ``folder`` (its ``assignment.py``), validated."""
    folder, course_root = Path(folder).resolve(), Path(course_root).resolve()
    path = folder / "assignment.py"
    if not path.is_file():
        raise AssignmentError(f"{path}: no such file (an assignment folder needs assignment.py)")
    module = load_module(f"_assignment_{folder.name}", path)
    ident = getattr(module, "ID", None)
    if not isinstance(ident, str) or not ident.isidentifier():
        raise AssignmentError(f"{path}: ID must be a name such as 'lec03', got {ident!r}")
    questions = []
    for number, (qid, spec) in enumerate(dict(getattr(module, "QUESTIONS", {})).items(), start=1):
        title = tuple(spec.get("title", (qid, qid)))
        if len(title) != 2:
            raise AssignmentError(f"{path}: QUESTIONS[{qid!r}]['title'] must be (japanese, english)")
        questions.append(Question(qid, int(spec.get("number", number)), str(title[0]), str(title[1]),
                                  tuple(spec.get("functions", ()))))
    if not questions:
        raise AssignmentError(f"{path}: QUESTIONS is empty")
    found = Assignment(ident, folder, course_root, module, tuple(questions))
    for name, kind in found.probed.items():
        if kind not in KINDS:
            raise AssignmentError(f"{path}: PROBED[{name!r}] must be one of {', '.join(KINDS)}, got {kind!r}")
    for fn, helpers in found.calls.items():
        unknown = {fn, *helpers} - set(found.graded_names)
        if unknown:
            raise AssignmentError(f"{path}: CALLS names {sorted(unknown)}, which are not graded names")
    for q in questions:
        unknown = set(q.functions) - set(found.graded_names)
        if unknown:
            raise AssignmentError(f"{path}: question {q.id} grades {sorted(unknown)}, which are not graded names")
    try:  # it runs in every child before the first cell: broken, it would stop every student's notebook
        compile(found.probes_code, str(found.probes_file), "exec")
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise AssignmentError(f"{found.probes_file}: not valid Python: {exc}") from None
    return found


def current() -> Assignment:
    """The assignment grader_config.py names (``ASSIGNMENT``, ``ASSIGNMENT_DIR``)."""
    from autograder.config import grader_config as cfg

    root = layout.CONFIG_FILE.resolve().parent
    folder = getattr(cfg, "ASSIGNMENT_DIR", None)
    folder = root / folder if folder else layout.COURSE_DIR / cfg.ASSIGNMENT
    found = load(folder, root)
    if found.id != cfg.ASSIGNMENT:
        raise AssignmentError(f"{folder / 'assignment.py'} is assignment {found.id!r}, but grader_config.py "
                              f"names {cfg.ASSIGNMENT!r}")
    if tuple(q.id for q in found.questions) != tuple(cfg.POINTS):
        raise AssignmentError(f"the questions of {found.id} ({', '.join(q.id for q in found.questions)}) and "
                              f"grader_config.POINTS ({', '.join(cfg.POINTS)}) differ")
    return found
