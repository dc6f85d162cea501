"""Public self-check for gradient (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "gradient"
points = 10


@test_case(points=None, hidden=False)
def test_small_example(gradient):
    assert callable(gradient), "gradient \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / gradient is not defined"
    # residuals y - y_hat = [0, 1, 1]: dE/dw = sum r (-x) = -3, dE/db = sum r (-1) = -2
    result = gradient([0.0, 1.0, 2.0], [1.0, 3.0, 4.0], 1.0, 1.0)
    assert len(result) == 2, "(\u2202E/\u2202w, \u2202E/\u2202b) \u306e 2 \u3064\u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / return the pair (\u2202E/\u2202w, \u2202E/\u2202b)"
    dw, db = result
    assert np.isclose(dw, -3.0) and np.isclose(db, -2.0), (
        f"(\u2202E/\u2202w, \u2202E/\u2202b) = (\u22123, \u22122) \u306e\u306f\u305a\u3067\u3059\u304c {(dw, db)} \u3067\u3057\u305f (\u5e73\u5747\u3067\u306f\u306a\u304f\u548c) / "
        f"(\u2202E/\u2202w, \u2202E/\u2202b) should be (\u22123, \u22122), got {(dw, db)} (sums, not means)")


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
        f"\u6570\u5024\u5fae\u5206 ({dw_num:.5f}, {db_num:.5f}) \u3068\u4e00\u81f4\u3057\u307e\u305b\u3093: {(dw, db)} / "
        f"does not match the numerical derivative ({dw_num:.5f}, {db_num:.5f}): {(dw, db)}")
