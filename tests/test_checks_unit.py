"""The trusted vocabulary, the runner and the stand-ins' type conformance, without a sandbox (milliseconds).

PrairieLearn-style: each check is called on plain values and must pass, or fail with a student-facing
message, exactly as a hidden test would see it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from otter.test_files import test_case

from autograder.check import vocabulary as checks
from autograder.course.lec03 import checks as lec03_checks
from autograder.check import runner
from autograder.execute import stand_ins
from autograder.check.vocabulary import CallFailed, CheckFailed, Credit
from autograder.execute.child.protocol import Opaque


# --- coercion ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (1.5, 1.5), (2, 2.0), (np.float32(0.25), 0.25), (np.float64(3.0), 3.0), (np.array(4.0), 4.0),
    (np.array([5.0]), 5.0), (np.array([[6]]), 6.0), (np.int64(7), 7.0),
])
def test_as_float_accepts_numbers_in_every_honest_container(value, expected):
    assert checks.as_float(value, "f") == expected


@pytest.mark.parametrize("value, words", [
    (True, "must return a number"), ("1.0", "must return a number"), (None, "must return a number"),
    (Opaque("MagicFloat"), "MagicFloat"), (np.array([1.0, 2.0]), "shape (2,)"), (float("nan"), "nan or inf"),
])
def test_as_float_refuses_what_is_not_one_finite_number(value, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        checks.as_float(value, "f")


@pytest.mark.parametrize("value", [[1, 2, 3], (1.0, 2.0, 3.0), np.array([1, 2, 3], dtype=np.int32),
                                   np.array([[1.0], [2.0], [3.0]]), np.array([[1.0, 2.0, 3.0]], dtype=np.float32)])
def test_as_vector_accepts_lists_tuples_columns(value):
    np.testing.assert_array_equal(checks.as_vector(value, "v", length=3), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("value, words", [
    ([1.0, 2.0], "expected a 1-D array of 3"), (np.zeros((3, 3)), "shape (3, 3)"), (["a", "b", "c"], "array of numbers"),
    (np.array([1.0, np.inf, 2.0]), "nan or inf"), (Opaque("Tensor"), "Tensor"),
])
def test_as_vector_refuses(value, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        checks.as_vector(value, "v", length=3)


@pytest.mark.parametrize("value", [(1.0, 2.0), [1, 2], np.array([1.0, 2.0]), np.array([[1.0], [2.0]]),
                                   (np.float32(1.0), np.array(2.0))])
def test_as_pair_accepts_tuples_lists_arrays(value):
    assert checks.as_pair(value, "p") == (1.0, 2.0)


@pytest.mark.parametrize("value", [1.0, (1.0,), (1.0, 2.0, 3.0), np.zeros(3), {"w": 1.0, "b": 2.0}])
def test_as_pair_refuses(value):
    with pytest.raises(CheckFailed, match="pair"):
        checks.as_pair(value, "p")


def test_as_int_batches_reads_lists_arrays_and_whole_floats():
    batches = lec03_checks.as_int_batches([[0, 2], np.array([1.0, 3.0]), 4], "m")
    assert [b.tolist() for b in batches] == [[0, 2], [1, 3], [4]]
    assert [b.tolist() for b in lec03_checks.as_int_batches(np.array([[1, 0], [2, 3]]), "m")] == [[1, 0], [2, 3]]
    with pytest.raises(CheckFailed, match="integer indices"):
        lec03_checks.as_int_batches([np.array([0.5, 1.0])], "m")
    with pytest.raises(CheckFailed, match="list of index arrays"):
        lec03_checks.as_int_batches(7, "m")


# --- comparisons ---------------------------------------------------------------------------------------------
def test_check_scalar_passes_within_tolerance_and_names_a_known_mistake():
    checks.check_scalar("loss", 10.0, 10.0 + 1e-7, rtol=1e-5, atol=1e-6)
    with pytest.raises(CheckFailed, match="HINT"):
        checks.check_scalar("loss", 10.0, 5.0, rtol=1e-5, atol=1e-6, mistakes={"HINT": 5.0})
    with pytest.raises(CheckFailed) as failure:
        checks.check_scalar("loss", 10.0, 7.0, rtol=1e-5, atol=1e-6, mistakes={"HINT": 5.0})
    assert "HINT" not in str(failure.value) and "10" not in str(failure.value)  # no expected value shown


def test_check_vector_shapes_and_values():
    checks.check_vector("p", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), rtol=1e-5, atol=1e-6)
    with pytest.raises(CheckFailed, match="returned 1 values, expected 2"):
        checks.check_vector("p", np.array([1.0, 2.0]), np.array([1.0]), rtol=1e-5, atol=1e-6)
    with pytest.raises(CheckFailed, match="expected values"):
        checks.check_vector("p", np.array([1.0, 2.0]), np.array([1.0, 3.0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batches, problem", [
    ([[2, 0, 4], [1, 3]], None), ([[0, 1, 2]], "dropped"), ([[0, 0, 1], [2, 3]], "exactly once"),
    ([[0, 1], [2, 3, 4]], "batch_size elements"), ([[0, 1, 2, 3, 4]], "batch_size elements"),
])
def test_is_epoch_partition(batches, problem):
    found = lec03_checks.is_epoch_partition([np.array(b) for b in batches], 5, 3)
    assert (found is None) if problem is None else (problem in found), found


@pytest.mark.parametrize("accuracy, credit", [(0.99, 1.0), (0.96, 1.0), (0.93, 0.5), (0.90, 0.0), (0.5, 0.0)])
def test_accuracy_credit_is_linear_between_floor_and_full(accuracy, credit):
    assert checks.accuracy_credit(accuracy, 0.96, 0.90) == pytest.approx(credit)


def test_credit_is_a_float_with_a_message():
    credit = Credit(0.25, "why")
    assert credit == 0.25 and credit.message == "why"


# --- the runner: parts, partial credit, grader bugs, helpers both ways ----------------------------------------
def _question(*cases, part_of=None):
    return runner.Question(tuple(cases), dict(part_of or {}))


def _case(fn):
    return test_case(points=None, hidden=True)(fn)


@_case
def _passes(value):
    checks.check_scalar("f", 1.0, value, rtol=1e-9, atol=0)


@_case
def _half(value):
    return Credit(0.5, "half: thresholds and causes")


@_case
def _fails(value):
    raise CheckFailed("wrong")


@_case
def _bug(value):
    raise KeyError("grader bug")


def test_parts_score_separately_and_sum():
    q = _question(_passes, _half, _fails, part_of={"_passes": "a", "_half": "b", "_fails": "c"})
    r = runner.run_question(q, {"value": 1.0}, "q", {"a": 4, "b": 2, "c": 4})
    assert r["parts"] == {"a": {"score": 4.0, "max_score": 4.0}, "b": {"score": 1.0, "max_score": 2.0},
                          "c": {"score": 0.0, "max_score": 4.0}}
    assert r["score"] == 5.0 and r["max_score"] == 10.0
    assert [c["part"] for c in r["checks"]] == ["a", "b", "c"]
    assert r["checks"][1]["message"] == "half: thresholds and causes" and r["checks"][1]["passed"]


def test_a_question_without_parts_is_one_part():
    r = runner.run_question(_question(_passes, _fails), {"value": 1.0}, "q", runner.parts_of("q", 10, {}))
    assert r["parts"] == {"q": {"score": 0.0, "max_score": 10.0}} and r["score"] == 0.0


def test_a_grader_bug_is_marked_for_the_ta():
    r = runner.run_question(_question(_bug), {"value": 1.0}, "q", {"q": 10})
    assert r["score"] == 0.0 and r["checks"][0]["grader_error"] is True and "TA" in r["checks"][0]["message"]


def test_validation_catches_unknown_names_and_unmapped_parts():
    with pytest.raises(runner.GraderBug, match="unknown names"):
        runner.validate("q", _question(_passes), {"q": 10}, {"other"})
    with pytest.raises(runner.GraderBug, match="parts"):
        runner.validate("q", _question(_passes, _fails, part_of={"_passes": "a"}), {"a": 5, "b": 5}, {"value"})
    with pytest.raises(runner.GraderBug, match="sum"):
        runner.parts_of("q", 10, {"q": {"a": 3, "b": 3}})
    runner.validate("q", _question(_passes, _fails, part_of={"_passes": "a", "_fails": "b"}), {"a": 5, "b": 5},
                    {"value"})


class _FakeSession:
    """Answers a call by whether the reference's helpers stand in (``oracles``) or the student's own do."""

    def __init__(self, with_reference, with_own):
        self.answers = {True: with_reference, False: with_own}
        self.calls = []

    def call(self, name, args, *, oracles=None, repeat=1, timeout=None):
        from autograder.execute.session import CallResult

        self.calls.append(oracles is not None)
        return CallResult(True, self.answers[oracles is not None])


@pytest.mark.parametrize("with_reference, with_own, passed, calls", [
    (1.0, 2.0, True, [True]),            # right with the reference's helpers: judged once
    (2.0, 1.0, True, [True, False]),     # right only with the student's own (a compensating caller)
    (2.0, 3.0, False, [True, False]),    # wrong both ways: the first failure is reported
])
def test_a_case_is_judged_with_either_helpers(with_reference, with_own, passed, calls):
    session = _FakeSession(with_reference, with_own)
    helpers = stand_ins.Helpers({"gradient": object()}, {"gd_step": ("gradient",)})
    gd_step = stand_ins.StandIn(session, "gd_step", stand_ins.CallLog(), "gd_step", 5, helpers)

    @_case
    def judged(gd_step):
        checks.check_scalar("gd_step", 1.0, gd_step(), rtol=1e-9, atol=0, mistakes={"REF-HINT": 2.0})

    r = runner.run_question(_question(judged), {"gd_step": gd_step, "helpers": helpers}, "gd_step", {"gd_step": 10})
    assert r["checks"][0]["passed"] is passed and session.calls == calls
    if not passed:
        assert "REF-HINT" in r["checks"][0]["message"]
    assert helpers.own is False


def test_a_hung_call_is_not_run_twice():
    helpers = stand_ins.Helpers({"gradient": object()}, {"gd_step": ("gradient",)})
    runs = []

    @_case
    def hangs(value):
        runs.append(1)
        helpers.for_call("gd_step")
        raise CallFailed("gd_step did not finish", "timeout")

    runner.run_question(_question(hangs), {"value": 0, "helpers": helpers}, "q", {"q": 10})
    assert runs == [1]


# --- the child's conformance of the reference's answers to the student's own containers ---------------------
@pytest.fixture(scope="module")
def conform():
    child = Path(__file__).resolve().parent.parent / "autograder" / "execute" / "child"
    sys.path.insert(0, str(child))
    try:
        import harness
    finally:
        sys.path.remove(str(child))
    return harness.conform


@pytest.mark.parametrize("value, like, check", [
    ((1.0, 2.0), np.array([0.0, 0.0], dtype=np.float32), lambda v: v.dtype == np.float32 and v.shape == (2,)),
    ((1.0, 2.0), [np.float64(0), np.float64(0)], lambda v: isinstance(v, list) and isinstance(v[0], np.float64)),
    (3.0, np.array(0.0), lambda v: isinstance(v, np.ndarray) and v.shape == ()),
    (3.0, np.float32(0), lambda v: isinstance(v, np.float32)),
    (np.array([1.0, 2.0, 3.0]), np.zeros((5, 1)), lambda v: v.shape == (3, 1)),
    ([np.array([2, 0]), np.array([1])], [[0, 1], [2]], lambda v: v == [[2, 0], [1]] and isinstance(v[0][0], int)),
    ((1.0, 2.0), None, lambda v: v == (1.0, 2.0)),
    ((1.0, 2.0), "not a number", lambda v: v == (1.0, 2.0)),
])
def test_conform_returns_the_reference_in_the_students_container(conform, value, like, check):
    assert check(conform(value, like))


def test_a_grader_bug_makes_the_whole_result_a_grader_fault(monkeypatch, tmp_path):
    """grade_notebook: an unexpected exception inside a hidden test is not scored as the student's 0: the
    result's status is sandbox_error (no score exported, batch retries, feedback says it is the grader's)."""
    from autograder import grade

    def run_question(loaded, env, question, parts):
        checks_ = [{"name": "case", "part": question, "passed": question != "loss",
                    "message": "x", **({"grader_error": True} if question == "loss" else {})}]
        return {"score": 0.0, "max_score": 10.0, "parts": {}, "checks": checks_}

    class Session:
        defined = []

        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def run_notebook(self):
            return []

    monkeypatch.setattr(grade.runner, "run_question", run_question)
    monkeypatch.setattr(grade, "Session", Session)
    path = tmp_path / "s.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}', encoding="utf-8")
    r = grade.grade_notebook(path)
    assert r["status"] == "sandbox_error" and "loss.case" in r["message"] and "not the student's fault" in r["message"]


def test_a_call_the_sandbox_refused_says_so():
    from autograder.execute.session import CallResult

    refused = CallResult(False, status="crashed", message="not run: the notebook's process was restarted 5 times already")
    assert "was not run: the notebook's process was restarted" in stand_ins.explain_failure("mse", refused)
    died = CallResult(False, status="crashed", message="the Python process died during the call")
    assert "died while mse ran" in stand_ins.explain_failure("mse", died)
