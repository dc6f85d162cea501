"""Public self-check for mse, rmse and mae (students see this file; grading uses other, hidden tests).

rmse is judged relative to your own `mse`: an rmse that is the square root of your mse passes here even when
mse is wrong (that costs the mse part only).
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "metrics"
points = 10

NO_SQRT = "RMSE の平方根を取っていない可能性があります / looks like the square root is missing"
N_MINUS_1 = "N − 1 ではなく N で割ってください / divide by N, not N − 1"
SUM = "和ではなく平均を取ってください / take the mean, not the sum"
NO_ABS = "MAE は絶対値の平均です / MAE is the mean of the absolute errors"
SQUARED = "MAE は 2 乗ではなく絶対値の平均です / MAE averages absolute errors, not squared ones"


def _hint(value, mistakes):
    """The hint of the typical mistake whose result ``value`` is (the same hints as the grader's), or ""."""
    for hint, wrong in mistakes.items():
        try:
            if np.isclose(float(value), wrong):
                return " — " + hint
        except (TypeError, ValueError):
            pass
    return ""


Y = np.array([1.0, 2.0, 3.0, 4.0])
Y_HAT = np.array([1.0, 3.0, 2.0, 6.0])   # errors 0, -1, 1, -2


@test_case(points=None, hidden=False)
def test_mse(mse):
    assert callable(mse), "mse が定義されていません / mse is not defined"
    value = mse(Y, Y_HAT)
    hint = _hint(value, {N_MINUS_1: 6 / 3, SUM: 6.0})
    assert np.ndim(value) == 0 and np.isclose(value, 1.5), \
        f"MSE = (0 + 1 + 1 + 4) / 4 = 1.5 のはずですが {value} でした / MSE should be (0 + 1 + 1 + 4) / 4 = 1.5, got {value}{hint}"


@test_case(points=None, hidden=False)
def test_rmse(rmse, mse):
    assert callable(rmse), "rmse が定義されていません / rmse is not defined"
    value = rmse(Y, Y_HAT)
    expected = [np.sqrt(1.5)]
    try:                                   # √ of your own mse, in case rmse uses it and it is wrong
        expected.append(float(np.sqrt(mse(Y, Y_HAT))))
    except Exception:
        pass
    hint = _hint(value, {NO_SQRT: 1.5, N_MINUS_1: np.sqrt(6 / 3)})
    assert np.ndim(value) == 0 and any(np.isclose(value, e) for e in expected), \
        f"RMSE = √1.5 ≈ 1.2247 のはずですが {value} でした / RMSE should be √1.5 ≈ 1.2247, got {value}{hint}"


@test_case(points=None, hidden=False)
def test_mae(mae):
    assert callable(mae), "mae が定義されていません / mae is not defined"
    value = mae(Y, Y_HAT)
    hint = _hint(value, {NO_ABS: -0.5, SQUARED: 1.5, N_MINUS_1: 4 / 3}) or _hint(value, {NO_ABS: 0.5})
    assert np.ndim(value) == 0 and np.isclose(value, 1.0), \
        f"MAE = (0 + 1 + 1 + 2) / 4 = 1 のはずですが {value} でした / MAE should be (0 + 1 + 1 + 2) / 4 = 1, got {value}{hint}"
