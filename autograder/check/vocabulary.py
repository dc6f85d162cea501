"""The trusted checking vocabulary the hidden tests are written in.

Every value a check looks at came from the sandbox as plain data. Checks coerce it here, in the trusted
process (``float()``, ``np.asarray(..., float64)``), refuse what is not a finite number of the right shape,
and compare against the reference themselves. A failed check raises ``CheckFailed`` with a message a
student can act on: it names the function and what looks wrong, never the hidden input or expected value.
Messages are Japanese / English.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from autograder.execute.child.protocol import Device, Opaque


class CheckFailed(AssertionError):
    """A check that did not pass; ``str(exc)`` is the student-facing message."""


class CallFailed(CheckFailed):
    """The student's function raised, timed out, or is not defined (``status`` says which)."""

    def __init__(self, message: str, status: str = "error"):
        super().__init__(message)
        self.status = status


# --- coercion ------------------------------------------------------------------------------------------------
def _describe(value) -> str:
    if isinstance(value, Opaque):
        return f"an object of type {value}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def as_float(value, what: str) -> float:
    """A finite float from a Python/numpy number, a 0-d array or a one-element array."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or isinstance(value, (Opaque, Device)):
        raise CheckFailed(f"{what} は数値 (float) を返す必要があります / {what} must return a number, "
                          f"got {_describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise CheckFailed(f"{what} が nan または inf を返しました / {what} returned nan or inf")
    return result


def as_vector(value, what: str, length: int | None = None) -> np.ndarray:
    """A finite float64 1-D array from a list, tuple or array (an (n, 1) array is accepted as (n,))."""
    if isinstance(value, (list, tuple)):
        try:
            value = np.array([as_float(v, what) for v in value], dtype=np.float64)
        except CheckFailed:
            raise CheckFailed(f"{what} は数値の配列を返す必要があります / {what} must return an array of "
                              "numbers") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise CheckFailed(f"{what} は数値の配列を返す必要があります / {what} must return an array of numbers, "
                          f"got {_describe(value)}")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 2 and 1 in array.shape:
        array = array.ravel()
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        raise CheckFailed(f"{what} の返す配列の形が違います (要素数 {length} の 1 次元配列のはず) / {what} returned "
                          f"an array of shape {array.shape}, expected a 1-D array of {length} values")
    if not np.all(np.isfinite(array)):
        raise CheckFailed(f"{what} が nan または inf を含む配列を返しました / {what} returned nan or inf")
    return array


def as_pair(value, what: str) -> tuple[float, float]:
    """Two finite floats from a tuple, list or array of length 2."""
    if isinstance(value, np.ndarray):
        value = list(value.ravel()) if value.size == 2 else value
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailed(f"{what} は 2 つの値の組 (a, b) を返す必要があります / {what} must return a pair of "
                          f"two numbers, got {_describe(value)}")
    return as_float(value[0], what), as_float(value[1], what)


# --- comparisons ---------------------------------------------------------------------------------------------
def close(expected: float, got: float, rtol: float, atol: float) -> bool:
    return math.isclose(got, expected, rel_tol=rtol, abs_tol=atol)


def check_scalar(what: str, expected: float, got: float, *, rtol: float, atol: float,
                 mistakes: dict[str, float] | None = None) -> None:
    """``got`` must equal ``expected`` within tolerance. ``mistakes`` maps a hint (a known wrong formula)
    to the value that formula gives; a match turns the message into that hint."""
    if close(expected, got, rtol, atol):
        return
    for hint, wrong in (mistakes or {}).items():
        if close(wrong, got, rtol, atol):
            raise CheckFailed(f"{what}: 値が違います。{hint}")
    raise CheckFailed(f"{what}: 値が正解と一致しません / {what} does not return the expected value")


def check_vector(what: str, expected: np.ndarray, got: np.ndarray, *, rtol: float, atol: float) -> None:
    if got.shape != expected.shape:
        raise CheckFailed(f"{what}: 返す配列の長さが違います / {what} returned {got.shape[0]} values, "
                          f"expected {expected.shape[0]}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        raise CheckFailed(f"{what}: 値が正解と一致しません / {what} does not return the expected values")


def accuracy_credit(accuracy: float, full: float, floor: float) -> float:
    """Fraction of the points: 1 at or above ``full``, linear down to 0 at ``floor``, 0 below."""
    if accuracy >= full:
        return 1.0
    if accuracy <= floor:
        return 0.0
    return (accuracy - floor) / (full - floor)


class Credit(float):
    """A case's credit in [0, 1] with the message the student reads about it (thresholds, usual causes)."""

    def __new__(cls, value: float, message: str):
        credit = super().__new__(cls, value)
        credit.message = message
        return credit

