"""Public self-check for predict and loss (students see this file; grading uses other, hidden tests).

loss is judged relative to your own `predict`: a loss that is right with your predict passes here even when
predict is wrong (that costs the predict part only).
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "loss"
points = 10
MEAN = "和ではなく平均になっていないか確認してください (E は ½ Σ) / E is a sum, ½ Σ (y − ŷ)², not a mean"
NO_HALF = "係数 ½ が抜けていないか確認してください / the factor ½ seems to be missing"
NO_SQUARE = "誤差を 2 乗しているか確認してください / square the residuals"


def _hint(value, mistakes):
    """The hint of the typical mistake whose result ``value`` is (the same hints as the grader's), or ""."""
    for hint, wrong in mistakes.items():
        try:
            if np.isclose(float(value), wrong):
                return " — " + hint
        except (TypeError, ValueError):
            pass
    return ""


@test_case(points=None, hidden=False)
def test_predict(predict):
    assert callable(predict), "predict が定義されていません / predict is not defined"
    y_hat = np.asarray(predict(np.array([0.0, 1.0, 2.0]), 2.0, 1.0))
    assert y_hat.shape == (3,), \
        f"入力と同じ形 (3,) の配列を返してください (実際: {y_hat.shape}) / return an array of shape (3,), got {y_hat.shape}"
    assert np.allclose(y_hat, [1.0, 3.0, 5.0]), \
        f"ŷ = w x + b = [1, 3, 5] のはずですが {y_hat} でした / ŷ = w x + b should be [1, 3, 5], got {y_hat}"


@test_case(points=None, hidden=False)
def test_loss_is_half_sum(loss, predict):
    assert callable(loss), "loss が定義されていません / loss is not defined"
    # residuals y - y_hat = [0, 1, 2]  ->  E = 1/2 (0 + 1 + 4) = 2.5
    value = loss(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]), 1.0, 1.0)
    assert np.ndim(value) == 0, "loss はスカラーを返してください / loss must return a scalar"
    x, y = np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0])
    expected = [2.5]
    try:                                   # with your own predict, in case loss uses it and it is wrong
        expected.append(float(0.5 * np.sum((y - np.asarray(predict(x, 1.0, 1.0), dtype=float)) ** 2)))
    except Exception:
        pass
    hint = _hint(value, {MEAN: 5 / 6, NO_HALF: 5.0, NO_SQUARE: 1.5})
    assert any(np.isclose(value, e) for e in expected), (
        f"E = ½ Σ (y_n − w x_n − b)² = 2.5 のはずですが {value} でした / "
        f"E = ½ Σ (y_n − w x_n − b)² should be 2.5, got {value}{hint or ' (a sum, not a mean, with the factor ½)'}")
