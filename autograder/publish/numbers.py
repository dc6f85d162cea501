"""How a score or a count reads for people (feedback, report): 10.0 → "10", 7.25 → "7.25", none → "–".

The K-LMS CSV has its own, stricter form (``csvfmt.format_score``: at most two decimals, "" for none)."""
from __future__ import annotations

import numbers

NONE = "–"


def shown(x, digits: int = 2) -> str:
    """``x`` rounded to ``digits`` decimals without trailing zeros; integers as they are; "–" for None."""
    if x is None:
        return NONE
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return str(x)
    try:
        return f"{round(float(x), digits):g}"
    except (TypeError, ValueError):
        return str(x)
