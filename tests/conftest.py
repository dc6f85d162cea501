"""Shared fixtures: the small MNIST profile for the whole session, and grading of variant notebooks.

Grading is deterministic (same file, same secret -> same result), so results are cached by the sha256 of
the submitted bytes for the whole session: a notebook graded by two test modules is graded once. Each
catalog module grades all its variants in one module-scoped fixture, two at a time (``Grader.many``).
``test_determinism.py`` grades uncached as well.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# before anything reads it: every grade in the tests uses the small, checksummed MNIST subset
os.environ["AUTOGRADER_MNIST_PROFILE"] = "small"
# a fixed course secret, so that the hidden inputs (and so any failure) are the same on every run
os.environ.setdefault("AUTOGRADER_SECRET", "tests-only-course-secret")
# tests that need a secret *file* get one of their own: the repository's .grader_secret is the course's
os.environ.setdefault("AUTOGRADER_SECRET_FILE", os.path.join(tempfile.mkdtemp(prefix="autograder-tests-"),
                                                             ".grader_secret"))

import notebook_variants as nv  # noqa: E402

from autograder import layout  # noqa: E402


_calls = itertools.count()


class Grader:
    """``grader(nb_or_bytes)`` -> grade_notebook's result. Writes the submission into ``directory``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.cache: dict[str, dict] = {}

    def __call__(self, submission, *, name: str = "submission.ipynb", directory: Path | None = None,
                 cache: bool = True, isolated: bool = False, limits: dict | None = None,
                 timeout: float = 600) -> dict:
        """Grade in this process, or with ``isolated`` (always when ``limits`` are given) in a child Python
        (``nv.grade_subprocess``: for attacks that might hang or kill the grader), under ``limits``
        overriding grader_config.LIMITS there. An isolated grade that does not return within ``timeout``
        seconds fails the test."""
        from autograder.grade import grade_notebook

        data = submission if isinstance(submission, bytes) else nv.dumps(submission)
        isolated = isolated or bool(limits)
        key = hashlib.sha256(data).hexdigest() + "\0" + Path(name).suffix
        if isolated:
            key += "\0isolated " + json.dumps(limits or {}, sort_keys=True)
        if cache and key in self.cache:
            return self.cache[key]
        # a folder of its own per call: two threads grading the same bytes must not share (and rewrite) a file
        folder = Path(directory or self.directory) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-{next(_calls)}"
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        if isolated:
            result = nv.grade_subprocess(path, timeout=timeout, limits=limits)
            if result is None:
                raise AssertionError(f"grade_notebook did not return within {timeout} s (limits {limits})")
        else:
            result = grade_notebook(path)
        json.dumps(result)  # a result is always plain JSON
        if cache:
            self.cache[key] = result
        return result

    def many(self, submissions: dict, *, workers: int = 2, **kw) -> "Results":
        """Grade several submissions (name -> notebook, bytes, or a function building one; or a pair of
        that and a dict of ``__call__`` options) side by side, ``workers`` at a time.

        grade_notebook is safe to call from several threads (each call has its own sandbox, and the child
        does the work), so two workers use the two cores of a CI machine. Put the slowest first. A variant
        that could not be built or graded is kept as its exception and raised again by the test that reads
        it, not by the fixture (one broken variant does not take its neighbours with it).
        """
        def one(sub):
            sub, options = sub if isinstance(sub, tuple) else (sub, {})
            return self(sub() if callable(sub) else sub, **{**kw, **options})

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {name: pool.submit(one, sub) for name, sub in submissions.items()}
            return Results({name: _outcome(f) for name, f in futures.items()})


def _outcome(future):
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - re-raised by Results.__getitem__
        return exc


class Results(dict):
    """name -> result; reading a grade that raised raises its exception."""

    def __getitem__(self, name):
        value = super().__getitem__(name)
        if isinstance(value, Exception):
            raise value
        return value


def warm_up() -> None:
    """What grade_notebook caches on first use (MNIST profile files, reference, versions), computed once
    before grades run side by side in threads."""
    from autograder import grade

    grade.mnist_profile(grade.profile_name())
    grade.grader_version()
    grade.reference()


@pytest.fixture(scope="session")
def grader(tmp_path_factory) -> Grader:
    if not (layout.MNIST_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST is missing in {layout.MNIST_RAW}: run python -m autograder fetch-data")
    warm_up()
    return Grader(tmp_path_factory.mktemp("submissions"))


@pytest.fixture
def grade(grader, tmp_path):
    """``grade(nb)``: write the variant to tmp_path and grade it (cached across the session)."""
    return lambda submission, **kw: grader(submission, directory=tmp_path, **kw)


@pytest.fixture(scope="session")
def solution_result(grader) -> dict:
    return grader(nv.solution())


@pytest.fixture(scope="session")
def fast_solution_result(grader) -> dict:
    """The solution without its PyTorch part: the baseline of the numpy-only variants."""
    return grader(nv.without_mlp(nv.solution()))



# modules whose tests run notebooks (in the sandbox, a kernel or a batch) although they take no `grader`
SANDBOX_MODULES = {"test_sandbox", "test_batch", "test_notebooks_run", "test_examples", "test_determinism",
                   "test_public_vs_hidden"}


def pytest_collection_modifyitems(config, items):
    """Markers by what a test needs: ``sandbox`` (it runs notebooks), ``slow`` (full MNIST), else ``unit``."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if item.get_closest_marker("full_mnist"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("unit") or item.get_closest_marker("sandbox"):
            continue          # marked explicitly by its module
        if {"grader", "grade", "solution_result", "fast_solution_result"} & set(item.fixturenames) or \
                module in SANDBOX_MODULES or module.startswith(("test_sandbox", "test_grade_")) and \
                module != "test_grade_flags":
            item.add_marker(pytest.mark.sandbox)
        else:
            item.add_marker(pytest.mark.unit)
