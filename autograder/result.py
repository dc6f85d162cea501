"""The result of grading one notebook: its one definition, shared by grade, record, score and publish.

``autograder.grade.grade_notebook`` returns a ``Result`` (a plain JSON dict: TypedDicts are dicts), the
gradebook stores it as ``results.result_json`` and hands it back through ``parse``, which normalises it
once: every key present, pieces of the wrong kind dropped, numbers made numbers. Code downstream of
``parse`` (feedback, report, export, upload) reads a result without defensive checks.

``Status`` is what a result says about its notebook; ``GradeStatus`` adds what the gradebook says about a
student who has no result (nothing submitted, several notebooks, ...). Both subclass ``str``: they compare,
hash, format and serialise as their plain values ("ok"), so the JSON shape of a result never changes.
"""
from __future__ import annotations

import enum
import math
from typing import Any, TypedDict


class _Text(str, enum.Enum):
    """A str enum that prints as its value (f"{Status.OK}" == "ok")."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class Status(_Text):
    """The status of one graded notebook (``Result["status"]``)."""

    OK = "ok"                        # every cell ran (some may have raised): the score stands
    TIMEOUT = "timeout"              # a cell or a graded call ran past its time limit
    CRASHED = "crashed"              # the notebook's Python process died
    INVALID = "invalid"              # not a readable notebook: every question 0
    SANDBOX_ERROR = "sandbox_error"  # the grader failed (sandbox, hidden test bug): no score, graded again


class GradeStatus(_Text):
    """A student's status in the gradebook when no result decides it (else the result's ``Status``)."""

    MISSING = "missing"              # in the roster, nothing submitted
    NO_NOTEBOOK = "no_notebook"      # files, but no notebook among them
    AMBIGUOUS = "ambiguous"          # several notebooks, none chosen (``batch --pick``)
    REJECTED = "rejected"            # the notebook broke a size limit
    PENDING = "pending"              # not graded yet


class CheckRecord(TypedDict, total=False):
    name: str
    part: str | None                 # the part (function) the check counts towards
    passed: bool
    message: str                     # written for the student by the hidden test
    grader_error: bool               # present (True) when the hidden test itself failed


class PartResult(TypedDict):
    score: float | None
    max_score: float | None


class QuestionResult(TypedDict):
    score: float
    max_score: float | None
    parts: dict[str, PartResult]     # partial credit per function; {} when the grader reports none
    checks: list[CheckRecord]


class CellError(TypedDict, total=False):
    ename: str
    evalue: str
    traceback: str


class CellRecord(TypedDict):
    index: int | None                # 0-based position among the code cells
    status: str                      # ok | error | timeout | crashed | skipped | ...
    duration_s: float
    error: CellError | None


class Flag(TypedDict):
    kind: str                        # missing_package | unsupported | rebound | ...
    message: str                     # bilingual, a student may read it


class Result(TypedDict):
    assignment: str
    status: Status
    message: str
    total: float
    max_total: float | None
    questions: dict[str, QuestionResult]
    cells: list[CellRecord]
    measurements: dict[str, Any]     # notebook_seconds, device, seconds {qid: s}, mnist_accuracy, ...
    duration_s: float | None
    seed: int | None
    course_seed: Any
    grader_version: str
    mnist_profile: str | None
    sandbox: dict[str, Any]
    submission_sha256: str | None
    flags: list[Flag]


# --- normalising a stored or loaded result -----------------------------------------------------------------
def number(x, default: float | None = None) -> float | None:
    """``x`` as a finite float (bools are not numbers here), else ``default``."""
    if isinstance(x, bool):
        return default
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _text(x, default: str = "") -> str:
    return default if x is None else str(x)


def _optional_text(x) -> str | None:
    return None if x is None else str(x)


def _dict(x) -> dict:
    return x if isinstance(x, dict) else {}


def status(x) -> Status:
    """A result's status; anything unknown is a grader error (never a student's score)."""
    try:
        return Status(x)
    except ValueError:
        return Status.SANDBOX_ERROR


def _check(c: dict) -> CheckRecord:
    out = CheckRecord(name=_text(c.get("name")), part=_optional_text(c.get("part")),
                      passed=bool(c.get("passed")), message=_text(c.get("message")))
    if c.get("grader_error"):
        out["grader_error"] = True
    return out


def _part(p: dict) -> PartResult:
    return PartResult(score=number(p.get("score")), max_score=number(p.get("max_score")))


def question(q) -> QuestionResult:
    q = _dict(q)
    return QuestionResult(
        score=number(q.get("score"), 0.0), max_score=number(q.get("max_score")),
        parts={str(name): _part(p) for name, p in _dict(q.get("parts")).items() if isinstance(p, dict)},
        checks=[_check(c) for c in q.get("checks") or [] if isinstance(c, dict)])


def _cell(c: dict) -> CellRecord:
    index = c.get("index")
    error = c.get("error")
    return CellRecord(index=index if isinstance(index, int) and not isinstance(index, bool) else None,
                      status=_text(c.get("status")), duration_s=number(c.get("duration_s"), 0.0),
                      error={k: _text(v) for k, v in error.items()} if isinstance(error, dict) else None)


def _flag(f) -> Flag | None:
    if isinstance(f, str):
        return Flag(kind=f, message="")
    if isinstance(f, dict):
        return Flag(kind=str(f.get("kind") or "note"), message=_text(f.get("message")))
    return None


def _measurements(m) -> dict[str, Any]:
    out = dict(_dict(m))
    if "mnist_accuracy" in out:
        acc = number(out["mnist_accuracy"])
        if acc is None:
            del out["mnist_accuracy"]
        else:
            out["mnist_accuracy"] = acc
    if "seconds" in out:
        out["seconds"] = {str(q): s for q, s in _dict(out["seconds"]).items() if number(s) is not None}
    if "notebook_seconds" in out:
        out["notebook_seconds"] = number(out["notebook_seconds"])
    if "device" in out:
        out["device"] = str(out["device"])[:100] if out["device"] else ""
    return out


def parse(data) -> Result:
    """A result as the rest of the grader reads it, from anything ``json.loads`` gave (or a Result: then the
    same values again; parsing twice changes nothing). Keys this module does not know are kept as they are."""
    data = _dict(data)
    out: dict = dict(data)
    out.update(
        assignment=_text(data.get("assignment")),
        status=status(data.get("status")),
        message=_text(data.get("message")),
        total=number(data.get("total"), 0.0),
        max_total=number(data.get("max_total")),
        questions={str(qid): question(q) for qid, q in _dict(data.get("questions")).items()},
        cells=[_cell(c) for c in data.get("cells") or [] if isinstance(c, dict)],
        measurements=_measurements(data.get("measurements")),
        duration_s=number(data.get("duration_s")),
        seed=data.get("seed") if isinstance(data.get("seed"), int) else None,
        course_seed=data.get("course_seed"),
        grader_version=_text(data.get("grader_version")),
        mnist_profile=_optional_text(data.get("mnist_profile")),
        sandbox=_dict(data.get("sandbox")),
        submission_sha256=_optional_text(data.get("submission_sha256")),
        flags=[f for f in map(_flag, data.get("flags") or []) if f is not None],
    )
    return out  # type: ignore[return-value]


from_json = parse
