"""Public self-check for gd_step (students see this file; grading uses other, hidden tests).

gd_step is judged relative to your own `gradient`: a gd_step that is right with your gradient passes here
even when your gradient is wrong (that costs the gradient question only), and so does one that is right
with the task's gradient.
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gd_step"
points = 10


def _task_gradient(x, y, w, b):
    r = y - (w * x + b)
    return np.sum(-r * x), np.sum(-r)


def _expected(x, y, w, b, lr, gradient):
    """(w, b) − lr · gradient / N with the task's gradient, and with your own gradient when it runs."""
    found = []
    for grad in (_task_gradient, gradient):
        if not callable(grad):
            continue
        try:
            dw, db = grad(x, y, w, b)
            found.append((float(w - lr * dw / len(x)), float(b - lr * db / len(x))))
        except Exception:
            pass
    return found


def _check(gd_step, gradient, x, y, w, b, lr, what):
    result = gd_step(x, y, w, b, lr)
    assert len(result) == 2, "(w_new, b_new) の 2 つを返してください / return the pair (w_new, b_new)"
    w_new, b_new = float(result[0]), float(result[1])
    ok = any(np.isclose(w_new, ew) and np.isclose(b_new, eb) for ew, eb in _expected(x, y, w, b, lr, gradient))
    assert ok, what(w_new, b_new)


@test_case(points=None, hidden=False)
def test_one_step(gd_step, gradient):
    assert callable(gd_step), "gd_step が定義されていません / gd_step is not defined"
    # the task's gradient (sums) at (1, 1) is (-3, -2); with N = 3 and lr = 0.3 the step is (+0.3, +0.2)
    _check(gd_step, gradient, np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0]), 1.0, 1.0, 0.3,
           lambda w_new, b_new: (
               f"(w, b) − lr · gradient / N = (1.3, 1.2) のはずですが {(w_new, b_new)} でした (N = len(x) で割る) / "
               f"(w, b) − lr · gradient / N should be (1.3, 1.2), got {(w_new, b_new)} (divide by N = len(x))"))


@test_case(points=None, hidden=False)
def test_fixed_point(gd_step, gradient):
    # on an exact line the gradient is zero, so a step must not move (w, b)
    _check(gd_step, gradient, np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0, 7.0]), 2.0, 1.0, 0.1,
           lambda w_new, b_new: (
               f"勾配が 0 の点では (w, b) は変わらないはずですが {(w_new, b_new)} になりました / "
               f"where the gradient is zero (w, b) must not change, got {(w_new, b_new)}"))


@test_case(points=None, hidden=False)
def test_against_the_gradient(gd_step, gradient):
    # a batch of 5 with a larger gradient: the step goes against the gradient, divided by N = 5
    x = np.array([0.5, 1.5, 2.0, 3.5, 4.0])
    y = np.array([2.0, 1.0, 0.5, -1.0, -2.5])
    _check(gd_step, gradient, x, y, 0.3, -0.2, 0.05,
           lambda w_new, b_new: (
               f"{(w_new, b_new)} は (w, b) − lr · gradient / N になっていません (勾配の逆向き、N で割る) / "
               f"{(w_new, b_new)} is not (w, b) − lr · gradient / N (against the gradient, divided by N)"))
