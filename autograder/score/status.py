"""Which statuses carry a score: the vocabulary export, upload, report and the batch's retry agree on."""
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
