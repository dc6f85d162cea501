"""Statuses: what a graded notebook's status is (``of_notebook``), and which statuses carry a score (the
vocabulary export, upload, report and the batch's retry agree on)."""
from __future__ import annotations

from autograder.result import GradeStatus, Status

# the grader could not judge: graded again by the next batch, exported blank
RETRY_STATUSES = (Status.SANDBOX_ERROR,)
# no score exists (nothing graded, or the grader failed): exported blank, never a 0
NO_SCORE_STATUSES = (GradeStatus.MISSING, GradeStatus.NO_NOTEBOOK, GradeStatus.AMBIGUOUS, GradeStatus.REJECTED,
                     GradeStatus.PENDING, Status.SANDBOX_ERROR)


def has_score(status: str) -> bool:
    """Whether a student with this status has a graded score (before any override)."""
    return status not in NO_SCORE_STATUSES


def retried(status: str) -> bool:
    """Whether a stored result with this status is graded again by the next batch."""
    return status in RETRY_STATUSES


def of_notebook(cells: list[dict], call_faults: list[str]) -> tuple[Status, str]:
    """A graded notebook's status and the message that explains it, from its cells' records and the
    calls of graded functions that hung or crashed."""
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
        status = Status.CRASHED
    elif timed_out or "timeout" in call_faults:
        status = Status.TIMEOUT
    else:
        status = Status.OK
    return status, "; ".join(parts) if parts else "all cells ran"


def _cells(indices: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indices)  # 1-based, as a student counts code cells
