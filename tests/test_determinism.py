"""Grading is deterministic: the same submission graded three times gives the same JSON, timing aside.

The submission is the solution itself, so the real MNIST training runs each time (small profile, one torch
thread) and ``measurements.mnist_accuracy`` must come out identical too. Two of the three grades run side by
side, as ``batch`` runs them. The only fields allowed to differ are the timings, listed here explicitly.
"""
from __future__ import annotations

import copy

import notebook_variants as nv
import pytest

# every field that measures time (and nothing else may differ)
TIMING_FIELDS = (
    "duration_s",                    # top level: the whole grade
    "cells[].duration_s",            # each cell
    "measurements.notebook_seconds",  # all cells together
    "measurements.seconds",          # seconds spent in the student's code, per question
)


def without_timing(result: dict) -> dict:
    r = copy.deepcopy(result)
    del r["duration_s"]
    for cell in r["cells"]:
        del cell["duration_s"]
    del r["measurements"]["notebook_seconds"]
    del r["measurements"]["seconds"]
    return r


@pytest.fixture(scope="module")
def three_grades(grader):
    results = grader.many({"first": nv.solution, "second": (nv.solution, {"cache": False}),
                           "third": (nv.solution, {"cache": False})}, workers=3)
    return [results[k] for k in ("first", "second", "third")]


def test_same_submission_same_result(three_grades):
    first, *others = three_grades
    assert first["status"] == "ok" and first["total"] == 80.0, first["message"]
    for other in others:
        assert without_timing(other) == without_timing(first)


def test_mnist_accuracy_is_reproduced_exactly(three_grades):
    accuracies = [r["measurements"]["mnist_accuracy"] for r in three_grades]
    assert len(set(accuracies)) == 1, accuracies


def test_the_timing_fields_are_all_there(three_grades):
    """The list above is complete and not stale: every field it names exists, and they are numbers."""
    r = three_grades[0]
    assert isinstance(r["duration_s"], float)
    assert all(isinstance(c["duration_s"], float) for c in r["cells"]) and r["cells"]
    assert isinstance(r["measurements"]["notebook_seconds"], float)
    assert set(r["measurements"]["seconds"]) == set(nv.ALL_QUESTIONS)
    assert len(TIMING_FIELDS) == 4
