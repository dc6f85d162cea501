"""The late policy: what a late submission's score is multiplied by (grader_config.LATE_POLICY)."""
from __future__ import annotations

from autograder.config import grader_config as config


class LatePolicyError(ValueError):
    pass


def late_factor(late: bool) -> float:
    """1.0 on time or under "none"; 1 - LATE_FRACTION under "fraction"; 0.0 under "zero"."""
    if not late or config.LATE_POLICY == "none":
        return 1.0
    if config.LATE_POLICY == "fraction":
        return 1.0 - float(config.LATE_FRACTION)
    if config.LATE_POLICY == "zero":
        return 0.0
    raise LatePolicyError(f"unknown LATE_POLICY {config.LATE_POLICY!r} in grader_config.py")
