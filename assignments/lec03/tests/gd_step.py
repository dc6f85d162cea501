"""Public self-check for gd_step (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gd_step"
points = 10


@test_case(points=None, hidden=False)
def test_one_step(gd_step):
    assert callable(gd_step), "gd_step \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / gd_step is not defined"
    # gradient (sums) at (1, 1) is (-3, -2); with N = 3 and lr = 0.3 the step is (+0.3, +0.2)
    result = gd_step([0.0, 1.0, 2.0], [1.0, 3.0, 4.0], 1.0, 1.0, 0.3)
    assert len(result) == 2, "(w_new, b_new) \u306e 2 \u3064\u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / return the pair (w_new, b_new)"
    w_new, b_new = result
    assert np.isclose(w_new, 1.3) and np.isclose(b_new, 1.2), (
        f"(w, b) \u2212 lr \u00b7 gradient / N = (1.3, 1.2) \u306e\u306f\u305a\u3067\u3059\u304c {(w_new, b_new)} \u3067\u3057\u305f / "
        f"(w, b) \u2212 lr \u00b7 gradient / N should be (1.3, 1.2), got {(w_new, b_new)}")


@test_case(points=None, hidden=False)
def test_fixed_point(gd_step):
    # on an exact line the gradient is zero, so a step must not move (w, b)
    w_new, b_new = gd_step([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0], 2.0, 1.0, 0.1)
    assert np.isclose(w_new, 2.0) and np.isclose(b_new, 1.0), (
        f"\u52fe\u914d\u304c 0 \u306e\u70b9\u3067\u306f (w, b) \u306f\u5909\u308f\u3089\u306a\u3044\u306f\u305a\u3067\u3059\u304c {(w_new, b_new)} \u306b\u306a\u308a\u307e\u3057\u305f / "
        f"where the gradient is zero (w, b) must not change, got {(w_new, b_new)}")
