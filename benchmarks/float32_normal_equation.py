"""How far float32 arithmetic of a *correct* normal-equation formula lands from the float64 reference.

Prints, for each formula, over many draws of the hidden inputs (the same generator as
autograder/course/lec03/hidden_tests/normal_equation.py): the largest relative error of w and b, and the largest
*excess loss* (E(w, b) − E_min) / ½Σ(y − ȳ)², computed in float64. float32 errors lie along the direction in
which E is flat (two close x values, say; the hidden test draws its x stratified to avoid that), so a relative tolerance on (w, b) cannot tell them from the
no-bias mistake, while the excess loss can: NORMAL_EQUATION_EXCESS in grader_config.py sits between the
largest excess of a correct float32 formula and the smallest excess of a wrong one.

    .venv/bin/python benchmarks/float32_normal_equation.py [--draws 2000]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import assignment  # noqa: E402

ne = assignment.load_module("ne_tests", assignment.current().hidden_tests_dir / "normal_equation.py")
f32 = np.float32


def solve(x, y):
    A = np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), f32(len(x))]], dtype=f32)
    return np.linalg.solve(A, np.array([np.sum(x * y), np.sum(y)], dtype=f32))


def closed(x, y):
    n = f32(len(x))
    w = (n * np.sum(x * y) - np.sum(x) * np.sum(y)) / (n * np.sum(x * x) - np.sum(x) ** 2)
    return w, (np.sum(y) - w * np.sum(x)) / n


def centred(x, y):
    xm, ym = x.mean(), y.mean()
    w = np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2)
    return w, ym - w * xm


def lstsq(x, y):
    X = np.stack([x, np.ones_like(x)], axis=1)
    return np.linalg.lstsq(X, y, rcond=None)[0]


def inverse(x, y):
    X = np.stack([x, np.ones_like(x)], axis=1)
    return np.linalg.inv(X.T @ X) @ X.T @ y


def loop(x, y):
    sx = sy = sxx = sxy = f32(0)
    for a, b in zip(x, y):
        sx += a; sy += b; sxx += a * a; sxy += a * b
    n = f32(len(x))
    w = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return w, (sy - w * sx) / n


FORMULAS = {"solve": solve, "closed form": closed, "centred": centred, "lstsq": lstsq, "inverse": inverse,
            "python loop": loop}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    worst = {name: 0.0 for name in FORMULAS}
    excess = {name: 0.0 for name in FORMULAS}
    wrong, wrong_excess = np.inf, np.inf
    for _ in range(args.draws):
        for n in (2, 3, 5, 7, 1000):
            x, y = ne._data(rng, n)
            X = np.stack([x, np.ones_like(x)], axis=1)
            w, b = np.linalg.solve(X.T @ X, X.T @ y)
            for name, fn in FORMULAS.items():
                gw, gb = (float(v) for v in fn(x.astype(f32), y.astype(f32)))
                worst[name] = max(worst[name], abs(gw - w) / abs(w), abs(gb - b) / abs(b))
                excess[name] = max(excess[name], ne.excess_loss(x, y, gw, gb))
            nobias = np.sum(x * y) / np.sum(x * x)
            wrong = min(wrong, max(abs(nobias - w) / abs(w), 1.0), max(abs(b - w) / abs(w), abs(w - b) / abs(b)))
            wrong_excess = min(wrong_excess, ne.excess_loss(x, y, nobias, 0.0), ne.excess_loss(x, y, b, w))
    for name, err in worst.items():
        print(f"float32 {name:12s}: largest relative error {err:.2e}, largest excess loss {excess[name]:.2e}")
    print(f"correct float32 formulas: largest relative error {max(worst.values()):.2e}, "
          f"largest excess loss {max(excess.values()):.2e}")
    print(f"wrong formulas (no bias, swapped): smallest relative distance {wrong:.2e}, "
          f"smallest excess loss {wrong_excess:.2e}")


if __name__ == "__main__":
    sys.exit(main())
