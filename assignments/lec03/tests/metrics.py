"""Public self-check for mse, rmse and mae (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "metrics"
points = 10

Y = np.array([1.0, 2.0, 3.0, 4.0])
Y_HAT = np.array([1.0, 3.0, 2.0, 6.0])   # errors 0, -1, 1, -2


@test_case(points=None, hidden=False)
def test_mse(mse):
    assert callable(mse), "mse が定義されていません / mse is not defined"
    value = mse(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, 1.5), \
        f"MSE = (0 + 1 + 1 + 4) / 4 = 1.5 のはずですが {value} でした / MSE should be (0 + 1 + 1 + 4) / 4 = 1.5, got {value}"


@test_case(points=None, hidden=False)
def test_rmse(rmse):
    assert callable(rmse), "rmse が定義されていません / rmse is not defined"
    value = rmse(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, np.sqrt(1.5)), \
        f"RMSE = √1.5 ≈ 1.2247 のはずですが {value} でした / RMSE should be √1.5 ≈ 1.2247, got {value}"


@test_case(points=None, hidden=False)
def test_mae(mae):
    assert callable(mae), "mae が定義されていません / mae is not defined"
    value = mae(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, 1.0), \
        f"MAE = (0 + 1 + 1 + 2) / 4 = 1 のはずですが {value} でした / MAE should be (0 + 1 + 1 + 2) / 4 = 1, got {value}"
