"""Public self-check for gd_step (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gd_step"
points = 10


@test_case(points=None, hidden=False)
def test_one_step(gd_step):
    assert callable(gd_step), "gd_step が定義されていません / gd_step is not defined"
    # gradient (sums) at (1, 1) is (-3, -2); with N = 3 and lr = 0.3 the step is (+0.3, +0.2)
    result = gd_step([0.0, 1.0, 2.0], [1.0, 3.0, 4.0], 1.0, 1.0, 0.3)
    assert len(result) == 2, "(w_new, b_new) の 2 つを返してください / return the pair (w_new, b_new)"
    w_new, b_new = result
    assert np.isclose(w_new, 1.3) and np.isclose(b_new, 1.2), (
        f"(w, b) − lr · gradient / N = (1.3, 1.2) のはずですが {(w_new, b_new)} でした / "
        f"(w, b) − lr · gradient / N should be (1.3, 1.2), got {(w_new, b_new)}")


@test_case(points=None, hidden=False)
def test_fixed_point(gd_step):
    # on an exact line the gradient is zero, so a step must not move (w, b)
    w_new, b_new = gd_step([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0], 2.0, 1.0, 0.1)
    assert np.isclose(w_new, 2.0) and np.isclose(b_new, 1.0), (
        f"勾配が 0 の点では (w, b) は変わらないはずですが {(w_new, b_new)} になりました / "
        f"where the gradient is zero (w, b) must not change, got {(w_new, b_new)}")
