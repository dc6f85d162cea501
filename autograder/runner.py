"""Run otter-grader test files in the trusted process, against stand-ins for the student's names.

A hidden test file is an ordinary otter exception-based test file (``@test_case`` functions whose
parameters are filled by name). We load it ourselves (it is our own trusted code), fill the parameters
from an environment of stand-ins and trusted helpers, and turn each case into a check record with our
own message (otter's failure text would quote test source and expected values). A case may return a
credit in [0, 1] (the MNIST accuracy band); the question scores ``points × product of credits`` when every
case passes and 0 otherwise: a mistake costs its whole question, and nothing else.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from pathlib import Path

from otter.test_files import test_case

from .checks import CheckFailed

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def load_cases(path: Path) -> list[test_case]:
    """The test cases of one file, loaded once per process (a batch worker grades many notebooks)."""
    spec = importlib.util.spec_from_file_location(f"_hidden_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [v for v in vars(module).values() if isinstance(v, test_case)]


def _case_name(case: test_case) -> str:
    return case.name or case.test_func.__name__


def run_question(cases: list[test_case], env: dict, points: float) -> dict:
    checks, credit = [], 1.0
    for case in cases:
        params = inspect.signature(case.test_func).parameters
        kwargs = {p: (env if p == "env" else env.get(p)) for p in params}
        try:
            returned = case.test_func(**kwargs)
            case_credit = 1.0 if returned is None else min(1.0, max(0.0, float(returned)))
            message = "OK" if case_credit == 1.0 else f"部分点 / partial credit {case_credit:.2f}"
            checks.append({"name": _case_name(case), "passed": True, "message": message})
            credit *= case_credit
        except CheckFailed as exc:
            checks.append({"name": _case_name(case), "passed": False, "message": str(exc)})
            credit = 0.0
        except Exception as exc:  # our test met a value it did not expect: the student gets a clear zero
            log.warning("check %s raised %r", _case_name(case), exc, exc_info=True)
            checks.append({"name": _case_name(case), "passed": False,
                           "message": "結果を確認できませんでした (予期しない型の値?) / the result could not be "
                                      f"checked (an unexpected kind of value?): {type(exc).__name__}"})
            credit = 0.0
    return {"score": round(points * credit, 4), "max_score": float(points), "checks": checks}
