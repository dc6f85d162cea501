"""Hidden tests: predict(x, w, b) and loss(x, y, w, b) = ½ Σ (y − w x − b)², each a part of its own.

The task text asks for 1-D arrays here (lists only in Q1), so only arrays are tested.
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "loss"
points = 10
PART_OF = {"predict_values": "predict", "loss_values": "loss"}
MEAN = "和ではなく平均になっていないか確認してください (E は ½ Σ) / E is a sum, ½ Σ (y − ŷ)², not a mean"
NO_HALF = "係数 ½ が抜けていないか確認してください / the factor ½ seems to be missing"
NO_SQUARE = "誤差を 2 乗しているか確認してください / square the residuals"


def _case(rng, n):
    x = rng.uniform(-3, 9, n)
    y = rng.uniform(-5, 5) * x + rng.uniform(-20, 20) + rng.normal(0, 2, n)
    return x, y, float(rng.uniform(-4, 4)), float(rng.uniform(-10, 10))


@test_case(points=None, hidden=True)
def predict_values(predict, ref, rng, check, config):
    for n in (1, 4, 50):
        x, _, w, b = _case(rng, n)
        got = check.as_vector(predict(x, w, b), "predict", length=n)
        check.check_vector("predict", ref.predict(x, w, b), got, rtol=config.RTOL, atol=config.ATOL)


@test_case(points=None, hidden=True)
def loss_values(loss, ref, rng, check, config):
    for n in (2, 3, 5, 200):
        x, y, w, b = _case(rng, n)
        r = y - (w * x + b)
        expected = ref.loss(x, y, w, b)
        got = check.as_float(loss(x, y, w, b), "loss")
        check.check_scalar("loss", expected, got, rtol=config.RTOL, atol=config.ATOL, mistakes={
            MEAN: float(np.mean(r ** 2) / 2), NO_HALF: float(np.sum(r ** 2)), NO_SQUARE: float(np.sum(r) / 2)})
