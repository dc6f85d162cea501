"""The score stage alone (autograder.score): late policy × overrides × statuses, and the typed result's parse.

No sandbox, no gradebook: milliseconds."""
from __future__ import annotations

import json

import pytest

import grader_config
from autograder import result
from autograder.result import GradeStatus, Status
from autograder.score import final, late, overrides, questions, status

pytestmark = pytest.mark.unit

QUESTIONS = {"loss": 10.0, "mlp": 3.25}
GRADED_TOTAL = 13.25


def override(question=None, score=None, excused=False, sha256="abc"):
    return {"question": question, "score": score, "excused": int(excused), "reason": "why", "by": "ta",
            "at": "2025-01-01T00:00:00+00:00", "sha256": sha256}


def scored(status_=Status.OK, ovs=(), late_=False, sha256="abc", total=GRADED_TOTAL):
    return final.score(status=status_, graded_total=total, questions=dict(QUESTIONS), late=late_, sha256=sha256,
                       overrides={o["question"]: o for o in ovs})


# --- late policy ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy, fraction, factor", [("none", 0.2, 1.0), ("fraction", 0.2, 0.8),
                                                      ("fraction", 0.5, 0.5), ("zero", 0.2, 0.0)])
def test_late_factor(monkeypatch, policy, fraction, factor):
    monkeypatch.setattr(grader_config, "LATE_POLICY", policy)
    monkeypatch.setattr(grader_config, "LATE_FRACTION", fraction)
    assert late.late_factor(True) == pytest.approx(factor)
    assert late.late_factor(False) == 1.0


def test_unknown_late_policy_is_named(monkeypatch):
    monkeypatch.setattr(grader_config, "LATE_POLICY", "half")
    with pytest.raises(late.LatePolicyError, match="half"):
        late.late_factor(True)
    assert late.late_factor(False) == 1.0


# --- statuses -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("st, has_score, retried", [
    (Status.OK, True, False), (Status.TIMEOUT, True, False), (Status.CRASHED, True, False),
    (Status.INVALID, True, False), (Status.SANDBOX_ERROR, False, True),
    (GradeStatus.MISSING, False, False), (GradeStatus.NO_NOTEBOOK, False, False),
    (GradeStatus.AMBIGUOUS, False, False), (GradeStatus.REJECTED, False, False), (GradeStatus.PENDING, False, False),
])
def test_status_vocabulary(st, has_score, retried):
    for value in (st, st.value):                    # the enum and the plain string stored in SQLite agree
        assert status.has_score(value) is has_score
        assert status.retried(value) is retried
    assert f"{st}" == str(st) == st.value and json.dumps(st) == f'"{st.value}"'


# --- late policy × overrides × statuses -------------------------------------------------------------------------
POLICIES = {"none": 1.0, "fraction": 0.8, "zero": 0.0}
CASES = {
    # name: (overrides, raw total expected (None: no score), whole-assignment score or "EX" or None)
    "no override": ((), GRADED_TOTAL, None),
    "question": ((override("mlp", 10.0),), 20.0, None),
    "two questions": ((override("mlp", 10.0), override("loss", 5.0)), 15.0, None),
    "whole": ((override(None, 50.0),), GRADED_TOTAL, 50.0),
    "question and whole": ((override("mlp", 0.0), override(None, 42.0)), 10.0, 42.0),
    "excused": ((override(None, excused=True),), GRADED_TOTAL, "EX"),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("is_late", [False, True])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("st", [Status.OK, Status.TIMEOUT, Status.INVALID, Status.SANDBOX_ERROR,
                                GradeStatus.MISSING, GradeStatus.PENDING])
def test_final_score(monkeypatch, policy, is_late, case, st):
    monkeypatch.setattr(grader_config, "LATE_POLICY", policy)
    monkeypatch.setattr(grader_config, "LATE_FRACTION", 0.2)
    ovs, raw, whole = CASES[case]
    # every status with a stored result has a total (a sandbox_error's too: it must not count)
    s = scored(st, ovs, is_late, total=GRADED_TOTAL if isinstance(st, Status) else None)
    if not status.has_score(st):
        raw = None
    assert s.raw_total == (None if raw is None else pytest.approx(raw))
    if whole == "EX":
        assert s.excused and s.final_score is None
    elif whole is not None:
        assert not s.excused and s.final_score == whole        # the TA's score: no late policy on top
    elif raw is None:
        assert s.final_score is None
    else:
        assert s.final_score == pytest.approx(raw * (POLICIES[policy] if is_late else 1.0))
    assert [o["question"] for o in s.overrides] == sorted(o["question"] for o in ovs if o["question"]) + (
        [None] if any(o["question"] is None for o in ovs) else [])
    question_ovs = [o for o in ovs if o["question"]]
    if raw is None and question_ovs:
        assert overrides.QUESTION_OVERRIDE_WITHOUT_RESULT in s.flags
    if raw is not None:
        for o in question_ovs:
            assert s.questions[o["question"]] == o["score"]


def test_overrides_do_not_change_the_callers_scores():
    questions = dict(QUESTIONS)
    s = final.score(status="ok", graded_total=GRADED_TOTAL, questions=questions, late=False, sha256="abc",
                    overrides={"mlp": override("mlp", 10.0)})
    assert questions == QUESTIONS and s.questions["mlp"] == 10.0


def test_an_override_on_an_earlier_notebook_is_flagged():
    s = scored(ovs=[override("mlp", 10.0, sha256="old")], sha256="new")
    assert s.flags == [overrides.OVERRIDE_PREDATES_SUBMISSION]
    assert scored(ovs=[override("mlp", 10.0, sha256=None)], sha256="new").flags == []
    described = s.overrides[0]
    assert described == {"question": "mlp", "score": 10.0, "excused": False, "reason": "why", "by": "ta",
                         "at": "2025-01-01T00:00:00+00:00"}


def test_rounding_of_raw_and_final(monkeypatch):
    monkeypatch.setattr(grader_config, "LATE_POLICY", "fraction")
    monkeypatch.setattr(grader_config, "LATE_FRACTION", 1 / 3)
    s = scored(late_=True, total=10.0)
    assert s.raw_total == 10.0 and s.final_score == round(10.0 * (1 - 1 / 3), 6)


# --- the typed result -----------------------------------------------------------------------------------------
FULL = {
    "assignment": "lec03", "status": "ok", "message": "all cells ran", "total": 13.25, "max_total": 20.0,
    "questions": {"loss": {"score": 10.0, "max_score": 10.0, "parts": {"loss": {"score": 10.0, "max_score": 10.0}},
                           "checks": [{"name": "c", "part": "loss", "passed": True, "message": "OK"}]}},
    "cells": [{"index": 0, "status": "ok", "duration_s": 0.1, "error": None}],
    "measurements": {"notebook_seconds": 1.5, "device": "cpu", "seconds": {"loss": 0.1}, "mnist_accuracy": 0.97},
    "duration_s": 3.0, "seed": 7, "course_seed": 1, "grader_version": "v", "mnist_profile": "small",
    "sandbox": {"network": False}, "submission_sha256": "abc",
    "flags": [{"kind": "rebound", "message": "m"}],
}


def test_parse_keeps_a_well_formed_result_as_it_is():
    parsed = result.parse(json.loads(json.dumps(FULL)))
    assert parsed == FULL
    assert json.dumps(parsed, sort_keys=True) == json.dumps(FULL, sort_keys=True)   # the JSON shape is unchanged
    assert parsed["status"] is Status.OK and result.parse(parsed) == parsed        # parsing twice changes nothing


@pytest.mark.parametrize("broken, path, expected", [
    ({}, ("status",), Status.SANDBOX_ERROR),
    ({"status": "exploded"}, ("status",), Status.SANDBOX_ERROR),
    ({"total": "nan"}, ("total",), 0.0),
    ({"total": "7.5"}, ("total",), 7.5),
    ({"max_total": None}, ("max_total",), None),
    ({"questions": ["x"]}, ("questions",), {}),
    ({"questions": {"q": "junk"}}, ("questions", "q"), {"score": 0.0, "max_score": None, "parts": {}, "checks": []}),
    ({"questions": {"q": {"checks": ["x", {"passed": 1}], "parts": {"a": 3}}}}, ("questions", "q", "checks"),
     [{"name": "", "part": None, "passed": True, "message": ""}]),
    ({"questions": {"q": {"parts": {"a": 3, "b": {"score": "1"}}}}}, ("questions", "q", "parts"),
     {"b": {"score": 1.0, "max_score": None}}),
    ({"cells": [1, {"index": "2", "status": "error", "error": "boom"}]}, ("cells",),
     [{"index": None, "status": "error", "duration_s": 0.0, "error": None}]),
    ({"measurements": None}, ("measurements",), {}),
    ({"measurements": {"mnist_accuracy": True, "seconds": {"q": "slow", "r": 2}}}, ("measurements",),
     {"seconds": {"r": 2}}),
    ({"flags": ["old_note", 3, {"message": "m"}]}, ("flags",),
     [{"kind": "old_note", "message": ""}, {"kind": "note", "message": "m"}]),
    ("not a dict", ("questions",), {}),
])
def test_parse_normalises_once(broken, path, expected):
    got = result.parse(broken)
    for key in path:
        got = got[key]
    assert got == expected


# --- a graded notebook's status from its cells and calls -----------------------------------------------------
def _cells(*statuses):
    return [{"index": i, "status": s, "duration_s": 0.1, "error": None} for i, s in enumerate(statuses)]


@pytest.mark.parametrize("cells, faults, expected, words", [
    (("ok", "ok"), [], "ok", "all cells ran"),
    (("ok", "error"), [], "ok", "cell(s) 2 raised an error"),
    (("timeout", "ok"), [], "timeout", "cell(s) 1 ran past the time limit"),
    (("ok",), ["timeout", "timeout"], "timeout", "2 call(s) of graded functions did not finish"),
    (("crashed", "timeout"), [], "crashed", "cell(s) 1 stopped the Python process"),
    (("ok",), ["crashed"], "crashed", "died while a graded function ran"),
])
def test_notebook_status_from_cells_and_calls(cells, faults, expected, words):
    got, message = status.of_notebook(_cells(*cells), faults)
    assert got == expected and isinstance(got, Status)
    assert words in message


# --- a question's score from its parts' credits ---------------------------------------------------------------
@pytest.mark.parametrize("credit, expected_parts, expected", [
    ({"a": 1.0, "b": 1.0}, {"a": 4.0, "b": 6.0}, 10.0),
    ({"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 6.0}, 6.0),
    ({"a": 0.5, "b": 1 / 3}, {"a": 2.0, "b": 2.0}, 4.0),
    ({"a": 0.0, "b": 0.0}, {"a": 0.0, "b": 0.0}, 0.0),
])
def test_question_score_is_the_sum_of_its_parts(credit, expected_parts, expected):
    checks = [{"name": "c", "part": "a", "passed": True, "message": "OK"}]
    got = questions.scored({"a": 4, "b": 6}, credit, checks)
    assert {p: v["score"] for p, v in got["parts"].items()} == expected_parts
    assert got["score"] == expected and got["max_score"] == 10.0 and got["checks"] == checks
    assert all(v["max_score"] == {"a": 4.0, "b": 6.0}[p] for p, v in got["parts"].items())
