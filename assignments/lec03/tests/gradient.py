"""Public self-check for gradient (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gradient"
points = 10


@test_case(points=None, hidden=False)
def test_small_example(gradient):
    assert callable(gradient), "gradient が定義されていません / gradient is not defined"
    # residuals y - y_hat = [0, 1, 1]: dE/dw = sum r (-x) = -3, dE/db = sum r (-1) = -2
    result = gradient(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0]), 1.0, 1.0)
    assert len(result) == 2, "(∂E/∂w, ∂E/∂b) の 2 つを返してください / return the pair (∂E/∂w, ∂E/∂b)"
    dw, db = result
    assert np.isclose(dw, -3.0) and np.isclose(db, -2.0), (
        f"(∂E/∂w, ∂E/∂b) = (−3, −2) のはずですが {(dw, db)} でした (平均ではなく和) / "
        f"(∂E/∂w, ∂E/∂b) should be (−3, −2), got {(dw, db)} (sums, not means)")


@test_case(points=None, hidden=False)
def test_matches_finite_differences(gradient):
    x = np.array([0.5, 1.5, 2.0, 3.5])
    y = np.array([2.0, 1.0, 0.5, -1.0])
    w, b, h = 0.3, -0.2, 1e-6

    def half_sse(w_, b_):
        return 0.5 * np.sum((y - w_ * x - b_) ** 2)

    dw_num = (half_sse(w + h, b) - half_sse(w - h, b)) / (2 * h)
    db_num = (half_sse(w, b + h) - half_sse(w, b - h)) / (2 * h)
    dw, db = gradient(x, y, w, b)
    assert np.isclose(dw, dw_num, rtol=1e-5) and np.isclose(db, db_num, rtol=1e-5), (
        f"数値微分 ({dw_num:.5f}, {db_num:.5f}) と一致しません: {(dw, db)} / "
        f"does not match the numerical derivative ({dw_num:.5f}, {db_num:.5f}): {(dw, db)}")
