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
    # stratified: one x in each of n equal bins (in random order), so that no two x are nearly equal; a
    # tiny data set with two almost equal x is ill-conditioned, and float32 arithmetic of the correct
    # formula could not reach the solution closely there
    x = rng.permutation(0.2 + 8.8 * (np.arange(n) + rng.uniform(0.1, 0.9, n)) / n)
    y = rng.uniform(-80, -40) * x + rng.uniform(700, 1200) + rng.normal(0, 30, n)
    return x, y


def excess_loss(x, y, w, b) -> float:
    """(E(w, b) − E_min) / ½Σ(y − ȳ)², in float64: 0 at the least-squares solution. float32 arithmetic of a
    correct formula errs along the direction in which E is flat, so this stays tiny where (w, b) themselves
    can be 2 % off (benchmarks/float32_normal_equation.py measures both)."""
    X = np.stack([x, np.ones_like(x)], axis=1)
    best = np.linalg.lstsq(X, y, rcond=None)[0]
    loss = lambda w_, b_: 0.5 * float(np.sum((y - w_ * x - b_) ** 2))  # noqa: E731
    return (loss(w, b) - loss(*best)) / (0.5 * float(np.sum((y - y.mean()) ** 2)))


def _check_fit(check, config, ref, x, y, got):
    w, b = check.as_pair(got, WHAT)
    if excess_loss(x, y, w, b) <= config.NORMAL_EQUATION_EXCESS:
        return
    rw, rb = ref.fit_normal_equation(x, y)
    nobias_w = float(np.sum(x * y) / np.sum(x * x))
    opts = dict(rtol=config.RTOL, atol=config.ATOL)
    check.check_scalar(WHAT + " (w)", rw, w, mistakes={NO_BIAS: nobias_w, SWAPPED: rb}, **opts)
    check.check_scalar(WHAT + " (b)", rb, b, mistakes={NO_BIAS: 0.0, SWAPPED: rw}, **opts)
    raise check.CheckFailed(f"{WHAT}: 値が正解と一致しません / {WHAT} does not return the least-squares (w, b)")


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
