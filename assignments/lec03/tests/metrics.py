"""Public self-check for mse, rmse and mae (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "metrics"
points = 10

Y = [1.0, 2.0, 3.0, 4.0]
Y_HAT = [1.0, 3.0, 2.0, 6.0]   # errors 0, -1, 1, -2


@test_case(points=None, hidden=False)
def test_mse(mse):
    assert callable(mse), "mse \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / mse is not defined"
    value = mse(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, 1.5), \
        f"MSE = (0 + 1 + 1 + 4) / 4 = 1.5 \u306e\u306f\u305a\u3067\u3059\u304c {value} \u3067\u3057\u305f / MSE should be (0 + 1 + 1 + 4) / 4 = 1.5, got {value}"


@test_case(points=None, hidden=False)
def test_rmse(rmse):
    assert callable(rmse), "rmse \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / rmse is not defined"
    value = rmse(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, np.sqrt(1.5)), \
        f"RMSE = \u221a1.5 \u2248 1.2247 \u306e\u306f\u305a\u3067\u3059\u304c {value} \u3067\u3057\u305f / RMSE should be \u221a1.5 \u2248 1.2247, got {value}"


@test_case(points=None, hidden=False)
def test_mae(mae):
    assert callable(mae), "mae \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / mae is not defined"
    value = mae(Y, Y_HAT)
    assert np.ndim(value) == 0 and np.isclose(value, 1.0), \
        f"MAE = (0 + 1 + 1 + 2) / 4 = 1 \u306e\u306f\u305a\u3067\u3059\u304c {value} \u3067\u3057\u305f / MAE should be (0 + 1 + 1 + 2) / 4 = 1, got {value}"
