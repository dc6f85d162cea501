"""Public self-check for predict and loss (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "loss"
points = 10


@test_case(points=None, hidden=False)
def test_predict(predict):
    assert callable(predict), "predict が定義されていません / predict is not defined"
    y_hat = np.asarray(predict(np.array([0.0, 1.0, 2.0]), 2.0, 1.0))
    assert y_hat.shape == (3,), \
        f"入力と同じ形 (3,) の配列を返してください (実際: {y_hat.shape}) / return an array of shape (3,), got {y_hat.shape}"
    assert np.allclose(y_hat, [1.0, 3.0, 5.0]), \
        f"ŷ = w x + b = [1, 3, 5] のはずですが {y_hat} でした / ŷ = w x + b should be [1, 3, 5], got {y_hat}"


@test_case(points=None, hidden=False)
def test_loss_is_half_sum(loss):
    assert callable(loss), "loss が定義されていません / loss is not defined"
    # residuals y - y_hat = [0, 1, 1]  ->  E = 1/2 (0 + 1 + 1) = 1
    value = loss(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0]), 1.0, 1.0)
    assert np.ndim(value) == 0, "loss はスカラーを返してください / loss must return a scalar"
    assert np.isclose(value, 1.0), (
        f"E = ½ Σ (y_n − w x_n − b)² = 1 のはずですが {value} でした (平均ではなく和、係数 ½) / "
        f"E = ½ Σ (y_n − w x_n − b)² should be 1, got {value} (a sum, not a mean, with the factor ½)")
