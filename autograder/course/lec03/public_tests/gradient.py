"""Public self-check for gradient (students see this file; grading uses other, hidden tests).

gradient is judged relative to your own `predict`: a gradient that is right with your predict passes here
even when predict is wrong (that costs the predict part of Q2 only).
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gradient"
points = 10


def _sums(x, y, y_hat):
    r = y - y_hat                          # the formula of the task text, with sums
    return (float(np.sum(-r * x)), float(np.sum(-r)))


def _expected(x, y, w, b, predict):
    """(∂E/∂w, ∂E/∂b) with the task's ŷ = w x + b, and with your own predict when it runs."""
    found = [_sums(x, y, w * x + b)]
    if callable(predict):
        try:
            found.append(_sums(x, y, np.asarray(predict(x, w, b), dtype=float)))
        except Exception:
            pass
    return found


def _matches(result, expected, rtol=1e-5):
    return any(np.isclose(result[0], dw, rtol=rtol) and np.isclose(result[1], db, rtol=rtol) for dw, db in expected)


@test_case(points=None, hidden=False)
def test_small_example(gradient, predict):
    assert callable(gradient), "gradient が定義されていません / gradient is not defined"
    # residuals y - y_hat = [0, 1, 1]: dE/dw = sum r (-x) = -3, dE/db = sum r (-1) = -2
    x, y = np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0])
    result = gradient(x, y, 1.0, 1.0)
    assert len(result) == 2, "(∂E/∂w, ∂E/∂b) の 2 つを返してください / return the pair (∂E/∂w, ∂E/∂b)"
    dw, db = result
    assert _matches((dw, db), _expected(x, y, 1.0, 1.0, predict)), (
        f"(∂E/∂w, ∂E/∂b) = (−3, −2) のはずですが {(dw, db)} でした (平均ではなく和) / "
        f"(∂E/∂w, ∂E/∂b) should be (−3, −2), got {(dw, db)} (sums, not means)")


@test_case(points=None, hidden=False)
def test_matches_finite_differences(gradient, predict):
    x = np.array([0.5, 1.5, 2.0, 3.5])
    y = np.array([2.0, 1.0, 0.5, -1.0])
    w, b, h = 0.3, -0.2, 1e-6

    def half_sse(w_, b_):
        return 0.5 * np.sum((y - w_ * x - b_) ** 2)

    dw_num = (half_sse(w + h, b) - half_sse(w - h, b)) / (2 * h)
    db_num = (half_sse(w, b + h) - half_sse(w, b - h)) / (2 * h)
    dw, db = gradient(x, y, w, b)
    assert _matches((dw, db), [(dw_num, db_num)] + _expected(x, y, w, b, predict)[1:]), (
        f"数値微分 ({dw_num:.5f}, {db_num:.5f}) と一致しません: {(dw, db)} / "
        f"does not match the numerical derivative ({dw_num:.5f}, {db_num:.5f}): {(dw, db)}")
