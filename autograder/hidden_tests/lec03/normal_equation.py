"""Hidden tests: fit_normal_equation(x, y) -> (w, b). Runs in the trusted grader, never in the sandbox."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "normal_equation"
points = 10
WHAT = "fit_normal_equation"
NO_BIAS = "バイアス b を推定していないようです / it looks like the bias b is not fitted (ŷ = w x + b has two unknowns)"
SWAPPED = "w と b が入れ替わっていないか確認してください / check the order of the returned pair: (w, b)"


def _data(rng, n):
    x = rng.uniform(0.2, 9.0, n)
    y = rng.uniform(-80, -40) * x + rng.uniform(700, 1200) + rng.normal(0, 30, n)
    return x, y


def _check_fit(check, config, ref, x, y, got):
    w, b = check.as_pair(got, WHAT)
    rw, rb = ref.fit_normal_equation(x, y)
    nobias_w = float(np.sum(x * y) / np.sum(x * x))
    opts = dict(rtol=config.RTOL, atol=config.ATOL)
    check.check_scalar(WHAT + " (w)", rw, w, mistakes={NO_BIAS: nobias_w, SWAPPED: rb}, **opts)
    check.check_scalar(WHAT + " (b)", rb, b, mistakes={NO_BIAS: 0.0, SWAPPED: rw}, **opts)


@test_case(points=None, hidden=True)
def tiny_data_sets(fit_normal_equation, ref, rng, check, config):
    for n in (2, 3, 5):
        x, y = _data(rng, n)
        _check_fit(check, config, ref, x, y, fit_normal_equation(x, y))


@test_case(points=None, hidden=True)
def classroom_sized_data(fit_normal_equation, ref, rng, check, config):
    x, y = _data(rng, 1000)
    _check_fit(check, config, ref, x, y, fit_normal_equation(x, y))


@test_case(points=None, hidden=True)
def accepts_python_lists(fit_normal_equation, ref, rng, check, config):
    x, y = _data(rng, 7)
    _check_fit(check, config, ref, x, y, fit_normal_equation([float(v) for v in x], [float(v) for v in y]))
