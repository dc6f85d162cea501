"""A question's score from its parts' credits: each part scores ``its points × the product of its cases'
credits`` (a credit is 1 for a passed case, a fraction for the MNIST accuracy band, 0 for a failed one), and
the question scores the sum of its parts. The runner (``autograder.check.runner``) decides the credits;
this is the one place they become points."""
from __future__ import annotations

from autograder.result import CheckRecord, PartResult, QuestionResult


def scored(parts: dict[str, float], credit: dict[str, float], checks: list[CheckRecord]) -> QuestionResult:
    """``parts``: part -> points; ``credit``: part -> credit in [0, 1]; ``checks``: one record per case."""
    by_part = {part: PartResult(score=round(points * credit[part], 4), max_score=float(points))
               for part, points in parts.items()}
    return QuestionResult(score=round(sum(p["score"] for p in by_part.values()), 4),
                          max_score=float(sum(parts.values())), parts=by_part, checks=checks)
