"""Run otter-grader test files in the trusted process, against stand-ins for the student's names.

A hidden test file is an ordinary otter exception-based test file (``@test_case`` functions whose
parameters are filled by name). We load it ourselves (it is our own trusted code), fill the parameters
from an environment of stand-ins and trusted helpers, and turn each case into a check record with our
own message (otter's failure text would quote test source and expected values).

Scoring is per *part*: a question's graded functions (``grader_config.PARTS``, e.g. metrics: mse, rmse,
mae) score separately. A test file maps each case to its part with a module-level ``PART_OF`` dict (a file
without one is a single part: the question). A case may return a credit in [0, 1] (the MNIST accuracy
band); a part scores ``its points × product of its cases' credits`` when every case of the part passes and
0 otherwise: a mistake costs its own part, and nothing else.

A case that fails is run again with the student's own helpers when the reference's stood in (``gd_step``
calling ``gradient``): a caller is right when it is right with either, so a helper's mistake costs only the
helper's part.

Parameter names are validated when a file loads: a case that asks for a name the grader does not provide
is a bug in the grader (``GraderBug``), found by the tests and the build, never a student's zero.
"""
from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

from otter.test_files import test_case

from autograder import assignment
from autograder.check.vocabulary import CheckFailed
from autograder.result import CheckRecord, QuestionResult
from autograder.score import questions

log = logging.getLogger(__name__)


class GraderBug(RuntimeError):
    """A hidden test file that cannot be run as written (unknown parameter, part without points)."""


@dataclass(frozen=True)
class Question:
    cases: tuple
    part_of: dict          # case name -> part


@functools.lru_cache(maxsize=None)
def load_question(path: Path) -> Question:
    """The test cases of one file and their parts, loaded once per process (a batch worker grades many)."""
    module = assignment.load_module(f"_hidden_{path.stem}", path)
    cases = tuple(v for v in vars(module).values() if isinstance(v, test_case))
    part_of = dict(getattr(module, "PART_OF", {}))
    return Question(cases, part_of)


def case_name(case: test_case) -> str:
    return case.name or case.test_func.__name__


def parts_of(question: str, points: float, parts_config: dict) -> dict[str, float]:
    """part -> points for ``question`` (one part named after the question when none are configured)."""
    parts = dict(parts_config.get(question) or {question: points})
    if abs(sum(parts.values()) - points) > 1e-9:
        raise GraderBug(f"the parts of {question} sum to {sum(parts.values())}, not its {points} points")
    return parts


def validate(question: str, loaded: Question, parts: dict[str, float], provided: set[str]) -> None:
    """Every case's parameters are names the grader provides; every case has a configured part and every
    part has a case."""
    for case in loaded.cases:
        unknown = set(inspect.signature(case.test_func).parameters) - provided - {"env"}
        if unknown:
            raise GraderBug(f"hidden test {question}.{case_name(case)} asks for unknown names {sorted(unknown)}")
    used = {loaded.part_of.get(case_name(c), question if len(parts) == 1 else None) for c in loaded.cases}
    if None in used or not used <= set(parts) or set(parts) - used:
        raise GraderBug(f"hidden test {question}: cases map to parts {sorted(map(str, used))}, "
                        f"configured parts are {sorted(parts)}")


def _either_helpers(case: test_case, kwargs: dict, helpers) -> object:
    """Run the case with the reference's helpers standing in; if it fails (not by a hang or a crash) and
    helpers were involved, again with the student's own. The first failure is the one reported."""
    if helpers is None:
        return case.test_func(**kwargs)
    helpers.own, helpers.used = False, False
    try:
        return case.test_func(**kwargs)
    except CheckFailed as first:
        if not helpers.used or getattr(first, "status", "error") in ("timeout", "crashed"):
            raise
        helpers.own = True
        try:
            return case.test_func(**kwargs)
        except CheckFailed:
            raise first from None
    finally:
        helpers.own = False


def run_question(loaded: Question, env: dict, question: str, parts: dict[str, float]) -> QuestionResult:
    """One check record and one credit per case; the score stage turns the credits into the question's and
    its parts' scores."""
    checks = []
    credit = {part: 1.0 for part in parts}
    for case in loaded.cases:
        name = case_name(case)
        part = loaded.part_of.get(name, next(iter(parts)))
        params = inspect.signature(case.test_func).parameters
        kwargs = {p: (env if p == "env" else env[p]) for p in params}
        try:
            returned = _either_helpers(case, kwargs, env.get("helpers"))
            case_credit = 1.0 if returned is None else min(1.0, max(0.0, float(returned)))
            message = "OK" if case_credit == 1.0 else getattr(returned, "message", None) or \
                f"部分点 / partial credit {case_credit:.2f}"
            checks.append(CheckRecord(name=name, part=part, passed=True, message=message))
            credit[part] *= case_credit
        except CheckFailed as exc:
            checks.append(CheckRecord(name=name, part=part, passed=False, message=str(exc)))
            credit[part] = 0.0
        except Exception as exc:  # a bug of ours met a value it did not expect: the TA is told, not the student
            log.warning("check %s raised %r", name, exc, exc_info=True)
            checks.append(CheckRecord(name=name, part=part, passed=False, grader_error=True,
                                      message="採点側のエラーで確認できませんでした (TA が確認します) / the grader "
                                      f"could not check this (a grader error: a TA will look): {type(exc).__name__}"))
            credit[part] = 0.0
    return questions.scored(parts, credit, checks)
