"""Public self-check for fit_normal_equation (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "normal_equation"
points = 10
NO_BIAS = "バイアス b を推定していないようです / it looks like the bias b is not fitted (ŷ = w x + b has two unknowns)"


@test_case(points=None, hidden=False)
def test_exact_line(fit_normal_equation):
    assert callable(fit_normal_equation), \
        "fit_normal_equation が定義されていません / fit_normal_equation is not defined"
    w, b = fit_normal_equation([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])   # y = 2x + 1
    hint = f" — {NO_BIAS}" if np.isclose(b, 0.0) else ""
    assert np.isclose(w, 2.0) and np.isclose(b, 1.0), (
        f"y = 2x + 1 上の点なので (w, b) = (2, 1) のはずですが {(w, b)} でした / "
        f"points on y = 2x + 1 should give (w, b) = (2, 1), got {(w, b)}{hint}")


@test_case(points=None, hidden=False)
def test_noisy_points(fit_normal_equation):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.0, 3.0, 5.0, 4.0])
    result = fit_normal_equation(x, y)
    assert len(result) == 2, "(w, b) の 2 つを返してください / return the pair (w, b)"
    w, b = result
    assert np.ndim(w) == 0 and np.ndim(b) == 0, \
        "w と b はスカラーにしてください / w and b must be scalars"
    # least squares by the closed form for a line: w = cov(x, y) / var(x), b = mean(y) - w mean(x)
    w_expected = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    b_expected = y.mean() - w_expected * x.mean()
    assert np.isclose(w, w_expected) and np.isclose(b, b_expected), (
        f"最小二乗解は (w, b) = ({w_expected:.4f}, {b_expected:.4f}) ですが {(w, b)} でした / "
        f"the least-squares solution is (w, b) = ({w_expected:.4f}, {b_expected:.4f}), got {(w, b)}")
