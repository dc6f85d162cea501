"""Public self-check for predict and loss (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "loss"
points = 10


@test_case(points=None, hidden=False)
def test_predict(predict):
    assert callable(predict), "predict \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / predict is not defined"
    y_hat = np.asarray(predict([0.0, 1.0, 2.0], 2.0, 1.0))
    assert y_hat.shape == (3,), \
        f"\u5165\u529b\u3068\u540c\u3058\u5f62 (3,) \u306e\u914d\u5217\u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 (\u5b9f\u969b: {y_hat.shape}) / return an array of shape (3,), got {y_hat.shape}"
    assert np.allclose(y_hat, [1.0, 3.0, 5.0]), \
        f"\u0177 = w x + b = [1, 3, 5] \u306e\u306f\u305a\u3067\u3059\u304c {y_hat} \u3067\u3057\u305f / \u0177 = w x + b should be [1, 3, 5], got {y_hat}"


@test_case(points=None, hidden=False)
def test_loss_is_half_sum(loss):
    assert callable(loss), "loss \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / loss is not defined"
    # residuals y - y_hat = [0, 1, 1]  ->  E = 1/2 (0 + 1 + 1) = 1
    value = loss([0.0, 1.0, 2.0], [1.0, 3.0, 4.0], 1.0, 1.0)
    assert np.ndim(value) == 0, "loss \u306f\u30b9\u30ab\u30e9\u30fc\u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / loss must return a scalar"
    assert np.isclose(value, 1.0), (
        f"E = \u00bd \u03a3 (y_n \u2212 w x_n \u2212 b)\u00b2 = 1 \u306e\u306f\u305a\u3067\u3059\u304c {value} \u3067\u3057\u305f (\u5e73\u5747\u3067\u306f\u306a\u304f\u548c\u3001\u4fc2\u6570 \u00bd) / "
        f"E = \u00bd \u03a3 (y_n \u2212 w x_n \u2212 b)\u00b2 should be 1, got {value} (a sum, not a mean, with the factor \u00bd)")
