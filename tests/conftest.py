"""Shared fixtures: the small MNIST profile for the whole session, and grading of variant notebooks.

Grading is deterministic (same file, same secret -> same result), so results are cached by the sha256 of
the submitted bytes for the whole session: a notebook graded by two test modules is graded once.
``test_determinism.py`` calls ``grade_notebook`` itself, uncached.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# before anything reads it: every grade in the tests uses the small, checksummed MNIST subset
os.environ["AUTOGRADER_MNIST_PROFILE"] = "small"
# a fixed course secret, so that the hidden inputs (and so any failure) are the same on every run
os.environ.setdefault("AUTOGRADER_SECRET", "tests-only-course-secret")

import notebook_variants as nv  # noqa: E402

from autograder import layout  # noqa: E402


class Grader:
    """``grader(nb_or_bytes)`` -> grade_notebook's result. Writes the submission into ``directory``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.cache: dict[str, dict] = {}

    def __call__(self, submission, *, name: str = "submission.ipynb", directory: Path | None = None,
                 cache: bool = True) -> dict:
        from autograder.grade import grade_notebook

        data = submission if isinstance(submission, bytes) else nv.dumps(submission)
        key = hashlib.sha256(data).hexdigest() + "\0" + Path(name).suffix
        if cache and key in self.cache:
            return self.cache[key]
        folder = Path(directory or self.directory) / key[:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        result = grade_notebook(path)
        json.dumps(result)  # a result is always plain JSON
        if cache:
            self.cache[key] = result
        return result


@pytest.fixture(scope="session")
def grader(tmp_path_factory) -> Grader:
    if not (layout.MNIST_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST is missing in {layout.MNIST_RAW}: run python -m autograder fetch-data")
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

