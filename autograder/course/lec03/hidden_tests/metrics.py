"""Hidden tests: mse, rmse, mae on held-out predictions, each a part of its own (arrays, as the task says)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "metrics"
points = 10
PART_OF = {"mse_values": "mse", "rmse_values": "rmse", "mae_values": "mae"}
NO_SQRT = "RMSE の平方根を取っていない可能性があります / looks like the square root is missing"
N_MINUS_1 = "N − 1 ではなく N で割ってください / divide by N, not N − 1"
SUM = "和ではなく平均を取ってください / take the mean, not the sum"
NO_ABS = "MAE は絶対値の平均です / MAE is the mean of the absolute errors"
SQUARED = "MAE は 2 乗ではなく絶対値の平均です / MAE averages absolute errors, not squared ones"


def _cases(rng):
    for n in (2, 3, 5, 500):
        y = rng.uniform(400, 1200, n)
        yield y, y + rng.normal(rng.uniform(-30, 30), 40, n)


def _errors(rng):
    for y, p in _cases(rng):
        yield y, p, y - p, len(y)


@test_case(points=None, hidden=True)
def mse_values(mse, rng, check, config, ref):
    for y, p, e, n in _errors(rng):
        check.check_scalar("mse", ref.mse(y, p), check.as_float(mse(y, p), "mse"), rtol=config.RTOL,
                           atol=config.ATOL, mistakes={N_MINUS_1: float(np.sum(e ** 2) / (n - 1)),
                                                       SUM: float(np.sum(e ** 2))})


@test_case(points=None, hidden=True)
def rmse_values(rmse, rng, check, config, ref):
    for y, p, e, n in _errors(rng):
        check.check_scalar("rmse", ref.rmse(y, p), check.as_float(rmse(y, p), "rmse"), rtol=config.RTOL,
                           atol=config.ATOL, mistakes={NO_SQRT: float(np.mean(e ** 2)),
                                                       N_MINUS_1: float(np.sqrt(np.sum(e ** 2) / (n - 1)))})


@test_case(points=None, hidden=True)
def mae_values(mae, rng, check, config, ref):
    for y, p, e, n in _errors(rng):
        check.check_scalar("mae", ref.mae(y, p), check.as_float(mae(y, p), "mae"), rtol=config.RTOL,
                           atol=config.ATOL, mistakes={NO_ABS: float(np.mean(e)), SQUARED: float(np.mean(e ** 2)),
                                                       N_MINUS_1: float(np.sum(np.abs(e)) / (n - 1))})
