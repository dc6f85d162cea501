"""One submission in, one result out: ``grade_notebook(path) -> dict``.

Reads the notebook as data, runs its code cells in the sandbox, runs the hidden otter test files here in
the trusted process against stand-ins, and scores. Never raises for a bad submission: every fault becomes
a status and a message. Safe to call from several processes at once (each call has its own sandbox).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from pathlib import Path

import numpy as np

from autograder import assignment, layout, secret
from autograder import config as config_loader
from autograder.check import runner
from autograder.check import vocabulary as checks
from autograder.data import mnist
from autograder.execute import stand_ins
from autograder.execute.session import SandboxUnavailable, Session, sandbox_description
from autograder.ingest.notebook import InvalidNotebook, code_cells
from autograder.result import CellRecord, CheckRecord, PartResult, QuestionResult, Result, Status
from autograder.score import status as score_status

def config():
    """grader_config, loaded once and validated (autograder.config)."""
    return config_loader.load()


def reference(path: Path | None = None):
    """The assignment's reference solution (solutions/<id>/reference.py, or ``path``), trusted, loaded once."""
    return _load_reference(Path(path or assignment.current().reference_module))


@functools.lru_cache(maxsize=4)
def _load_reference(path: Path):
    return assignment.load_module(f"_reference_{path.parent.name}", path)


@functools.lru_cache(maxsize=4)
def check_module(path: Path | None):
    """What the hidden tests receive as ``check``: the assignment's checks.py (which extends the shared
    vocabulary), else the vocabulary itself."""
    return checks if path is None else assignment.load_module(f"_checks_{path.parent.name}", path)


def profile_name() -> str:
    return os.environ.get("AUTOGRADER_MNIST_PROFILE") or getattr(config(), "MNIST_PROFILE", None)


@functools.lru_cache(maxsize=2)
def mnist_profile(name: str) -> mnist.Profile:
    cfg = config()
    return mnist.profile(name, cfg.MNIST_HIDDEN_FRACTION, cfg.MNIST_SPLIT_SEED)


def data_profile(task: assignment.Assignment, profile: str | None) -> mnist.Profile | None:
    """The MNIST profile the assignment's sandbox sees (None for an assignment without MNIST); verified and
    written where missing, once per process; raises mnist.MnistError with what to do."""
    return mnist_profile(profile) if "mnist" in task.datasets else None


def prepare_data() -> None:
    """The data sets of the assignment, verified (fetched where missing) and written, once, before a batch's
    workers start; raises mnist.MnistError."""
    data_profile(assignment.current(), profile_name())


def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for path in paths:
        root = layout.ROOT if path.is_relative_to(layout.ROOT) else layout.CONFIG_FILE.parent
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


# the engine's folders and files whose code decides a score (everything else only stores or presents it)
DECIDING = ("execute", "check", "score", "grade.py", "config.py", "assignment.py", "ingest/notebook.py",
            "data/mnist.py", "data/idx.py")


def _tree(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def deciding_files(a) -> list[Path]:
    """Every file whose content can change a score of assignment ``a``, sorted."""
    pkg = layout.ROOT / "autograder"
    return sorted({*(p for name in DECIDING for p in _tree(pkg / name)), *_tree(a.folder),
                   layout.CONFIG_FILE, a.reference_module, *a.public_files.values()})


@functools.lru_cache(maxsize=2)
def grader_version(profile: str | None = None) -> str:
    """A hash of everything that decides a score: the engine's deciding folders, the assignment's grading
    folder, the configuration, the reference solution, the files the sandbox gets and the data sets."""
    a = assignment.current()
    h = hashlib.sha256(_files_digest(deciding_files(a)).encode())
    if "mnist" in a.datasets:
        cfg = config()
        h.update(repr((profile or profile_name(), sorted(mnist.SHA256.items()), cfg.MNIST_SPLIT_SEED,
                       cfg.MNIST_HIDDEN_FRACTION, mnist.SMALL_TRAIN, mnist.SMALL_TEST, mnist.SMALL_SEED)).encode())
    return h.hexdigest()[:16]


def _empty_questions(cfg, message: str) -> dict[str, QuestionResult]:
    return {q: QuestionResult(score=0.0, max_score=float(p),
                              parts={part: PartResult(score=0.0, max_score=float(points))
                                     for part, points in runner.parts_of(q, p, getattr(cfg, "PARTS", {})).items()},
                              checks=[CheckRecord(name="graded", passed=False, message=message)])
            for q, p in cfg.POINTS.items()}


def _result(cfg, task, status, message, questions, *, cells=(), measurements=None, started, seed=None,
            sha=None, profile=None, flags=()) -> Result:
    total = round(sum(q["score"] for q in questions.values()), 4)
    return valid_text(Result(
        assignment=cfg.ASSIGNMENT, status=Status(status), message=message,
        total=total, max_total=float(sum(cfg.POINTS.values())), questions=questions,
        cells=list(cells), measurements=measurements or {}, duration_s=round(time.monotonic() - started, 3),
        seed=seed, course_seed=cfg.COURSE_SEED, grader_version=grader_version(profile),
        mnist_profile=profile if "mnist" in task.datasets else None,
        sandbox=sandbox_description(cfg.LIMITS, tuple(task.public_files), task.datasets),
        submission_sha256=sha, flags=list(flags),
    ))


def grade_notebook(path: Path, *, reference_path: Path | None = None) -> Result:
    started = time.monotonic()
    cfg = config()
    task = assignment.current()
    profile = profile_name()
    path = Path(path)
    sha = None
    try:
        if path.stat().st_size > cfg.MAX_NOTEBOOK_BYTES:
            raise InvalidNotebook(f"the file is larger than {cfg.MAX_NOTEBOOK_BYTES // 2**20} MiB")
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        cells = code_cells(data)
    except InvalidNotebook as exc:
        message = f"ノートブックとして読めません / not a readable notebook: {exc}"
        return _result(cfg, task, Status.INVALID, message, _empty_questions(cfg, message), started=started,
                       sha=sha, profile=profile)
    except OSError as exc:  # the grader's own copy is gone or unreadable: the machine's fault, never a 0
        message = f"the grader could not read the notebook's file, nothing was run: {exc}"
        return _result(cfg, task, Status.SANDBOX_ERROR, message, _empty_questions(cfg, message), started=started,
                       profile=profile)
    seed = secret.hidden_seed(sha)
    ref = reference(reference_path)
    try:
        dataset = data_profile(task, profile)
    except mnist.MnistError as exc:
        message = f"the data set could not be prepared on this machine, nothing was run: {exc}"
        return _result(cfg, task, Status.SANDBOX_ERROR, message, _empty_questions(cfg, message), started=started,
                       seed=seed, sha=sha, profile=profile)
    timing = stand_ins.CallLog()
    measurements: dict = {}
    try:
        with Session(cells, task.kinds, files={**task.public_files, "submission.ipynb": path},
                     data_dir=dataset.sandbox_root if dataset else None, limits=cfg.LIMITS,
                     seed=cfg.COURSE_SEED, threads=cfg.TORCH_THREADS, probes=task.probes_code) as session:
            t0 = time.monotonic()
            records = session.run_notebook()
            measurements["notebook_seconds"] = round(time.monotonic() - t0, 3)
            facts = _notebook_facts(session) if session.defined else {}
            device = facts.get("device")
            measurements["device"] = device[:100] if isinstance(device, str) else "cpu"
            questions = _run_hidden_tests(session, task, cfg, ref, seed, timing, measurements, dataset,
                                          profile)
    except SandboxUnavailable as exc:
        message = f"sandbox could not be set up on this machine, nothing was run: {exc}"
        return _result(cfg, task, Status.SANDBOX_ERROR, message, _empty_questions(cfg, message), started=started,
                       seed=seed, sha=sha, profile=profile)
    measurements["seconds"] = {q: round(s, 4) for q, s in timing.seconds.items()}
    cell_dicts = [CellRecord(index=r.index, status=r.status, duration_s=r.duration_s, error=r.error)
                  for r in records]
    status, message = score_status.of_notebook(cell_dicts, timing.faults)
    bugs = [f"{q}.{c['name']}" for q, v in questions.items() for c in v["checks"] if c.get("grader_error")]
    if bugs:  # a bug of the grader's is never a student's zero: no score is exported, the TA is told
        status, message = Status.SANDBOX_ERROR, (f"grader error in hidden test(s) {', '.join(bugs)}: not the "
                                            f"student's fault; fix the test and grade again. {message}")
    return _result(cfg, task, status, message, questions, cells=cell_dicts, measurements=measurements,
                   started=started, seed=seed, sha=sha, profile=profile,
                   flags=_flags(cell_dicts, facts, task.graded_names))


def _run_hidden_tests(session, task, cfg, ref, seed, timing, measurements, dataset, profile) -> dict:
    questions = {}
    for i, question in enumerate(cfg.QUESTIONS):
        helpers = stand_ins.Helpers(task.oracles(ref), task.calls)
        env = {name: stand_ins.StandIn(session, name, timing, question, cfg.LIMITS["call_timeout_s"], helpers)
               for name in task.called}
        env.update(
            ref=ref, check=check_module(task.checks_module), config=cfg, helpers=helpers,
            stand_in_tools=stand_ins, rng=np.random.default_rng([seed, i]), measurements=measurements,
            probe=stand_ins.Probes(session, timing, question, cfg.LIMITS["probe_timeout_s"]),
        )
        if dataset is not None:
            env.update(mnist=dataset, band=cfg.ACCURACY[profile])
        loaded, parts = hidden_question(task, question)
        questions[question] = runner.run_question(loaded, env, question, parts)
    return questions


# what every hidden test may ask for besides the assignment's called functions (and, with MNIST among its
# data sets, ``mnist`` and ``band``)
ENGINE_NAMES = frozenset({"ref", "check", "config", "helpers", "stand_in_tools", "rng", "measurements", "probe"})


def hidden_test_names(task) -> frozenset:
    return frozenset({*task.called, *ENGINE_NAMES, *(("mnist", "band") if "mnist" in task.datasets else ())})


def hidden_question(task: assignment.Assignment, question: str):
    """A question's hidden test cases and its parts, validated against the names the grader provides."""
    cfg = config()
    loaded = runner.load_question(task.hidden_tests_dir / f"{question}.py")
    parts = runner.parts_of(question, cfg.POINTS[question], getattr(cfg, "PARTS", {}))
    runner.validate(question, loaded, parts, set(hidden_test_names(task)))
    return loaded, parts


def _flags(cells: list[dict], facts: dict, graded_names) -> list[dict]:
    """What a TA should look at, with a bilingual message the student may read too."""
    flags = []
    missing = sorted({m.group(1).split(".")[0] for c in cells if c.get("error")
                      for m in [MISSING_MODULE.search(str(c["error"].get("evalue", "")))]
                      if c["error"].get("ename") == "ModuleNotFoundError" and m})
    for package in missing:
        flags.append({"kind": "missing_package", "message":
                      f"採点環境には {package} がありません。TA が確認します / the grader does not have the package "
                      f"{package}; a TA will look at this notebook"})
    if any(COMPILER.search(str(c["error"].get("traceback", "")) + str(c["error"].get("evalue", "")))
           for c in cells if c.get("error")):
        flags.append({"kind": "unsupported", "message":
                      "torch.compile は採点環境では使えません (一時ファイルの大きさの制限)。使わずに学習してください / "
                      "torch.compile is not supported by the grader (its temporary files exceed the sandbox's file "
                      "size limit): train without it"})
    rebound = [n for n in facts.get("rebound", []) if isinstance(n, str) and n in graded_names]
    if rebound:
        flags.append({"kind": "rebound", "message":
                      f"{', '.join(rebound)} は後のセルで別の値に上書きされています。各関数は最後の定義で採点しました / "
                      f"{', '.join(rebound)} were rebound by later cells; each was graded from its last definition"})
    return flags


MISSING_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]+)'")
COMPILER = re.compile(r"torch[./]_(?:dynamo|inductor)|BackendCompilerFailed|InductorError")


def _notebook_facts(session) -> dict:
    result = session.probe("notebook_facts", timeout=10)
    return result.value if result.ok and isinstance(result.value, dict) else {}


def valid_text(value):
    """``value`` with every string made valid UTF-8 (lone surrogates from a student's message become
    U+FFFD), recursively: a result is always storable and printable."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if not value.isascii() else value
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_text(v) for v in value]
    return value
