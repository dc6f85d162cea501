"""A student's score from the grader's total: question overrides, then the late policy, then a
whole-assignment override or an excuse. The gradebook's one call into the score stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from autograder.score import overrides as ov
from autograder.score.late import late_factor
from autograder.score.status import has_score


@dataclass
class Score:
    questions: dict[str, float | None]          # after question overrides
    raw_total: float | None                     # graded total with question overrides; None: no score
    final_score: float | None                   # what K-LMS gets (None: nothing, or excused)
    excused: bool = False
    overrides: list[dict] = field(default_factory=list)   # the overrides in force, described
    flags: list[str] = field(default_factory=list)        # notes for a TA


def score(*, status: str, graded_total: float | None, questions: dict[str, float | None], late: bool,
          sha256: str | None, overrides: Mapping[str | None, Mapping]) -> Score:
    """Raw total and final score of one student (``questions``: the grader's score per question)."""
    questions = dict(questions)
    flags: list[str] = []
    raw = graded_total if has_score(status) else None
    raw = ov.apply_questions(raw, questions, sha256, overrides, flags)
    raw_total = None if raw is None else round(raw, 6)
    final_score = None if raw is None else round(raw * late_factor(late), 6)
    final_score, excused = ov.apply_whole(final_score, overrides)
    return Score(questions, raw_total, final_score, excused,
                 [ov.described(q, row) for q, row in ov.in_order(overrides)], flags)
