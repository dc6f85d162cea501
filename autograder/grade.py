"""One submission in, one result out: ``grade_notebook(path) -> dict``.

Reads the notebook as data, runs its code cells in the sandbox, runs the hidden otter test files here in
the trusted process against stand-ins, and scores. Never raises for a bad submission: every fault becomes
a status and a message. Safe to call from several processes at once (each call has its own sandbox).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import time
from pathlib import Path

import numpy as np

from autograder import layout, secret
from autograder.check import vocabulary as checks
from autograder.check import runner
from autograder.execute import stand_ins
from autograder import config as config_loader
from autograder.data import mnist
from autograder.ingest.notebook import InvalidNotebook, code_cells
from autograder.execute.session import Session, SandboxUnavailable, sandbox_description

NUMPY_API = ("fit_normal_equation", "predict", "loss", "gradient", "gd_step", "minibatch_indices", "train_sgd",
             "mse", "rmse", "mae")
TORCH_API = ("get_device", "MLP", "train_one_epoch", "evaluate", "model")
GRADED_NAMES = NUMPY_API + TORCH_API


def config():
    """grader_config, loaded once and validated (autograder.config)."""
    return config_loader.load()


@functools.lru_cache(maxsize=4)
def reference(path: Path = layout.REFERENCE_MODULE):
    spec = importlib.util.spec_from_file_location("lec03_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def profile_name() -> str:
    return os.environ.get("AUTOGRADER_MNIST_PROFILE") or config().MNIST_PROFILE


@functools.lru_cache(maxsize=2)
def mnist_profile(name: str) -> mnist.Profile:
    cfg = config()
    return mnist.profile(name, cfg.MNIST_HIDDEN_FRACTION, cfg.MNIST_SPLIT_SEED)


def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(layout.ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=2)
def grader_version(profile: str | None = None) -> str:
    """A hash of everything that decides a score: harness, hidden tests, checks, config, reference, data."""
    pkg = layout.ROOT / "autograder"
    deciding = sorted(
        [*pkg.glob("execute/**/*.py"), *layout.HIDDEN_TESTS_DIR.glob("*.py"),
         *(pkg / name for name in ("check/vocabulary.py", "check/runner.py", "config.py", "grade.py", "ingest/notebook.py")),
         layout.CONFIG_FILE, layout.REFERENCE_MODULE, layout.CO2_CSV]
    )
    h = hashlib.sha256(_files_digest(deciding).encode())
    cfg = config()
    h.update(repr((profile or profile_name(), sorted(mnist.SHA256.items()), cfg.MNIST_SPLIT_SEED,
                   cfg.MNIST_HIDDEN_FRACTION, mnist.SMALL_TRAIN, mnist.SMALL_TEST, mnist.SMALL_SEED)).encode())
    return h.hexdigest()[:16]


def _oracles(ref) -> dict:
    """Trusted reference functions the child may call while one call runs (see stand_ins.oracle)."""
    return dict(
        predict=stand_ins.oracle(ref.predict, 1), loss=stand_ins.oracle(ref.loss, 2),
        gradient=stand_ins.oracle(ref.gradient, 2), gd_step=stand_ins.oracle(ref.gd_step, 2),
        minibatch_indices=stand_ins.minibatch_oracle(ref.minibatch_indices), mse=stand_ins.oracle(ref.mse, 2),
    )


# the helpers each graded function may call (the solution's own calls, and those students commonly make):
# while it runs they are the reference's, or the student's own (stand_ins.Helpers)
CALLS = {
    "fit_normal_equation": ("predict", "loss", "gradient"),
    "loss": ("predict",),
    "gradient": ("predict", "loss"),
    "gd_step": ("gradient", "predict", "loss"),
    "train_sgd": ("minibatch_indices", "gd_step", "gradient", "loss", "predict"),
    "rmse": ("mse",),
    "mae": ("mse",),
}


def _empty_questions(cfg, message: str) -> dict:
    return {q: {"score": 0.0, "max_score": float(p),
                "parts": {part: {"score": 0.0, "max_score": float(points)}
                          for part, points in runner.parts_of(q, p, getattr(cfg, "PARTS", {})).items()},
                "checks": [{"name": "graded", "passed": False, "message": message}]}
            for q, p in cfg.POINTS.items()}


def _result(cfg, status, message, questions, *, cells=(), measurements=None, started, seed=None, sha=None,
            profile=None, flags=()):
    total = round(sum(q["score"] for q in questions.values()), 4)
    return valid_text({
        "assignment": cfg.ASSIGNMENT, "status": status, "message": message,
        "total": total, "max_total": float(sum(cfg.POINTS.values())), "questions": questions,
        "cells": list(cells), "measurements": measurements or {}, "duration_s": round(time.monotonic() - started, 3),
        "seed": seed, "course_seed": cfg.COURSE_SEED, "grader_version": grader_version(profile),
        "mnist_profile": profile, "sandbox": sandbox_description(cfg.LIMITS), "submission_sha256": sha,
        "flags": list(flags),
    })


def grade_notebook(path: Path, *, reference_path: Path | None = None) -> dict:
    started = time.monotonic()
    cfg = config()
    profile = profile_name()
    path = Path(path)
    try:
        if path.stat().st_size > cfg.MAX_NOTEBOOK_BYTES:
            raise InvalidNotebook(f"the file is larger than {cfg.MAX_NOTEBOOK_BYTES // 2**20} MiB")
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        cells = code_cells(data)
    except (OSError, InvalidNotebook) as exc:
        message = f"ノートブックとして読めません / not a readable notebook: {exc}"
        return _result(cfg, "invalid", message, _empty_questions(cfg, message), started=started, profile=profile)
    seed = secret.hidden_seed(sha)
    ref = reference(reference_path or layout.REFERENCE_MODULE)
    data_profile = mnist_profile(profile)
    timing = stand_ins.CallLog()
    measurements: dict = {}
    try:
        with Session(cells, list(GRADED_NAMES), files={"co2.csv": layout.CO2_CSV, "submission.ipynb": path},
                     data_dir=data_profile.sandbox_root, limits=cfg.LIMITS, seed=cfg.COURSE_SEED,
                     threads=cfg.TORCH_THREADS) as session:
            t0 = time.monotonic()
            records = session.run_notebook()
            measurements["notebook_seconds"] = round(time.monotonic() - t0, 3)
            facts = _notebook_facts(session) if session.defined else {}
            device = facts.get("device")
            measurements["device"] = device[:100] if isinstance(device, str) else "cpu"
            questions = _run_hidden_tests(session, cfg, ref, seed, timing, measurements, data_profile, profile)
    except SandboxUnavailable as exc:
        message = f"sandbox could not be set up on this machine, nothing was run: {exc}"
        return _result(cfg, "sandbox_error", message, _empty_questions(cfg, message), started=started,
                       seed=seed, sha=sha, profile=profile)
    measurements["seconds"] = {q: round(s, 4) for q, s in timing.seconds.items()}
    cell_dicts = [{"index": r.index, "status": r.status, "duration_s": r.duration_s, "error": r.error}
                  for r in records]
    status, message = _status(cell_dicts, timing.faults)
    bugs = [f"{q}.{c['name']}" for q, v in questions.items() for c in v["checks"] if c.get("grader_error")]
    if bugs:  # a bug of the grader's is never a student's zero: no score is exported, the TA is told
        status, message = "sandbox_error", (f"grader error in hidden test(s) {', '.join(bugs)}: not the "
                                            f"student's fault; fix the test and grade again. {message}")
    return _result(cfg, status, message, questions, cells=cell_dicts, measurements=measurements,
                   started=started, seed=seed, sha=sha, profile=profile, flags=_flags(cell_dicts, facts))


def _run_hidden_tests(session, cfg, ref, seed, timing, measurements, data_profile, profile) -> dict:
    questions = {}
    for i, question in enumerate(cfg.QUESTIONS):
        helpers = stand_ins.Helpers(_oracles(ref), CALLS)
        env = {name: stand_ins.StandIn(session, name, timing, question, cfg.LIMITS["call_timeout_s"], helpers)
               for name in NUMPY_API}
        env.update(
            ref=ref, check=checks, config=cfg, helpers=helpers, stand_in_tools=stand_ins,
            rng=np.random.default_rng([seed, i]), mnist=data_profile, band=cfg.ACCURACY[profile],
            measurements=measurements,
            probe=stand_ins.Probes(session, timing, question, cfg.LIMITS["mlp_call_timeout_s"]),
        )
        loaded, parts = hidden_question(question)
        questions[question] = runner.run_question(loaded, env, question, parts)
    return questions


HIDDEN_TEST_NAMES = frozenset({*NUMPY_API, "ref", "check", "config", "helpers", "stand_in_tools", "rng", "mnist",
                               "band", "measurements", "probe"})


def hidden_question(question: str):
    """A question's hidden test cases and its parts, validated against the names the grader provides."""
    cfg = config()
    loaded = runner.load_question(layout.HIDDEN_TESTS_DIR / f"{question}.py")
    parts = runner.parts_of(question, cfg.POINTS[question], getattr(cfg, "PARTS", {}))
    runner.validate(question, loaded, parts, set(HIDDEN_TEST_NAMES))
    return loaded, parts


def _flags(cells: list[dict], facts: dict) -> list[dict]:
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
    rebound = [n for n in facts.get("rebound", []) if isinstance(n, str) and n in GRADED_NAMES]
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


def _status(cells: list[dict], call_faults: list[str]) -> tuple[str, str]:
    crashed = [c["index"] for c in cells if c["status"] == "crashed"]
    timed_out = [c["index"] for c in cells if c["status"] == "timeout"]
    errors = [c["index"] for c in cells if c["status"] == "error"]
    parts = []
    if crashed:
        parts.append(f"cell(s) {_cells(crashed)} stopped the Python process; the cells after them still ran")
    if timed_out:
        parts.append(f"cell(s) {_cells(timed_out)} ran past the time limit and were stopped; later cells still ran")
    if errors:
        parts.append(f"cell(s) {_cells(errors)} raised an error")
    if "timeout" in call_faults:
        parts.append(f"{call_faults.count('timeout')} call(s) of graded functions did not finish in time")
    if "crashed" in call_faults:
        parts.append("the Python process died while a graded function ran")
    if crashed or "crashed" in call_faults:
        status = "crashed"
    elif timed_out or "timeout" in call_faults:
        status = "timeout"
    else:
        status = "ok"
    return status, "; ".join(parts) if parts else "all cells ran"


def _cells(indices: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indices)  # 1-based, as a student counts code cells
