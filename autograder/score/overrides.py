"""A TA's decisions applied to one grade: question scores replace the grader's, a whole-assignment score or
an excuse replaces the final score. Overrides arrive as rows ({question, score, excused, reason, by, at,
sha256}: the ``overrides`` table's row in force per question, ``None`` for the whole assignment)."""
from __future__ import annotations

from typing import Mapping

OVERRIDE_PREDATES_SUBMISSION = "override_predates_submission"
QUESTION_OVERRIDE_WITHOUT_RESULT = "question_override_without_result"


def in_order(overrides: Mapping[str | None, Mapping]) -> list[tuple[str | None, Mapping]]:
    """Question overrides by question id, then the whole-assignment one."""
    return sorted(overrides.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))


def described(question: str | None, row: Mapping) -> dict:
    """What a grade lists of an override (the report and the questions CSV show it; never a student)."""
    return {"question": question, "score": row["score"], "excused": bool(row["excused"]),
            "reason": row["reason"], "by": row["by"], "at": row["at"]}


def apply_questions(raw: float | None, questions: dict[str, float | None], sha256: str | None,
                    overrides: Mapping[str | None, Mapping], flags: list[str]) -> float | None:
    """``raw`` with each question override in place of the grader's score (``questions`` updated in place);
    notes for a TA appended to ``flags``. ``raw`` None (no graded result): question overrides have no effect."""
    for q, row in in_order(overrides):
        if row["sha256"] is not None and sha256 is not None and row["sha256"] != sha256:
            flags.append(OVERRIDE_PREDATES_SUBMISSION)
        if q is not None and raw is not None:
            raw = raw - (questions.get(q) or 0.0) + row["score"]
            questions[q] = row["score"]
        elif q is not None:
            flags.append(QUESTION_OVERRIDE_WITHOUT_RESULT)
    return raw


def apply_whole(final_score: float | None, overrides: Mapping[str | None, Mapping]) -> tuple[float | None, bool]:
    """(final score, excused) once the whole-assignment override in force (if any) is applied."""
    whole = overrides.get(None)
    if whole is None:
        return final_score, False
    if whole["excused"]:
        return None, True
    return whole["score"], False
