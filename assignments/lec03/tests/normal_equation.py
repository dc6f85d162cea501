"""Public self-check for fit_normal_equation (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "normal_equation"
points = 10


@test_case(points=None, hidden=False)
def test_exact_line(fit_normal_equation):
    assert callable(fit_normal_equation), \
        "fit_normal_equation \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / fit_normal_equation is not defined"
    w, b = fit_normal_equation([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])   # y = 2x + 1
    assert np.isclose(w, 2.0) and np.isclose(b, 1.0), (
        f"y = 2x + 1 \u4e0a\u306e\u70b9\u306a\u306e\u3067 (w, b) = (2, 1) \u306e\u306f\u305a\u3067\u3059\u304c {(w, b)} \u3067\u3057\u305f / "
        f"points on y = 2x + 1 should give (w, b) = (2, 1), got {(w, b)}")


@test_case(points=None, hidden=False)
def test_noisy_points(fit_normal_equation):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.0, 3.0, 5.0, 4.0])
    result = fit_normal_equation(x, y)
    assert len(result) == 2, "(w, b) \u306e 2 \u3064\u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / return the pair (w, b)"
    w, b = result
    assert np.ndim(w) == 0 and np.ndim(b) == 0, \
        "w \u3068 b \u306f\u30b9\u30ab\u30e9\u30fc\u306b\u3057\u3066\u304f\u3060\u3055\u3044 / w and b must be scalars"
    # least squares by the closed form for a line: w = cov(x, y) / var(x), b = mean(y) - w mean(x)
    w_expected = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    b_expected = y.mean() - w_expected * x.mean()
    assert np.isclose(w, w_expected) and np.isclose(b, b_expected), (
        f"\u6700\u5c0f\u4e8c\u4e57\u89e3\u306f (w, b) = ({w_expected:.4f}, {b_expected:.4f}) \u3067\u3059\u304c {(w, b)} \u3067\u3057\u305f / "
        f"the least-squares solution is (w, b) = ({w_expected:.4f}, {b_expected:.4f}), got {(w, b)}")
