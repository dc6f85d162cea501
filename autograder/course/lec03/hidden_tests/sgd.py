"""Hidden tests: train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0) -> (w, b, losses).

Judged by behaviour, not bit-equality: it reaches the normal-equation solution, the same seed gives the
same result, one loss per epoch on the whole training set, and the order of the minibatches is drawn anew
every epoch. For the last point the trusted side replays minibatch SGD on a tiny data set for every
possible pair of epoch orders and finds which pair the student's result came from.
Each check passes when train_sgd is right with the reference's helpers (minibatch_indices, gd_step,
gradient, loss, predict: computed in the trusted process while it runs) or with the student's own
(grade.CALLS, runner), so a mistake in a helper costs only that helper's question.
"""
import itertools

import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "sgd"
points = 10
WHAT = "train_sgd"


def _result(check, value, n_epochs):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise check.CheckFailed(f"{WHAT} は (w, b, losses) の 3 つを返してください / {WHAT} must return (w, b, losses)")
    w, b = check.as_float(value[0], WHAT + " (w)"), check.as_float(value[1], WHAT + " (b)")
    losses = check.as_vector(value[2], WHAT + " (losses)")
    if len(losses) != n_epochs:
        raise check.CheckFailed(
            f"{WHAT}: losses はエポックごとに 1 つ (全部で n_epochs 個) / losses must hold one value per epoch "
            f"(got {len(losses)} for {n_epochs} epochs)")
    return w, b, losses


@test_case(points=None, hidden=True)
def reaches_the_least_squares_solution(train_sgd, ref, rng, check, config):
    n, n_epochs = 200, 40
    x = rng.uniform(-2, 2, n)
    y = rng.uniform(1, 4) * x + rng.uniform(2, 6) + rng.normal(0, 0.2, n)
    seed = int(rng.integers(0, 2**31))
    value = train_sgd(x, y, 0.05, 10, n_epochs, seed)
    w, b, losses = _result(check, value, n_epochs)
    w_star, b_star = ref.fit_normal_equation(x, y)
    if not (check.close(w_star, w, config.SGD_RTOL, 0.0) and check.close(b_star, b, config.SGD_RTOL, 0.0)):
        raise check.CheckFailed(
            f"{WHAT}: 正規方程式の解に収束しませんでした / {WHAT} did not reach the least-squares solution "
            "(check the update inside the epoch loop and that every minibatch is used)")
    if not losses[-1] < losses[0]:
        raise check.CheckFailed(f"{WHAT}: 損失が減っていません / the loss did not decrease over the epochs")
    if not check.close(ref.loss(x, y, w, b), losses[-1], 1e-4, 1e-8):
        raise check.CheckFailed(
            f"{WHAT}: losses の各要素は、そのエポックの後の訓練データ全体での E にしてください (losses[0] は最初のエポックの後) / "
            "each entry of losses must be E on the whole training set after its epoch (losses[0] after the first "
            "epoch), not on the last minibatch")


@test_case(points=None, hidden=True)
def same_seed_same_result(train_sgd, rng, check):
    n = 30
    x = rng.uniform(-2, 2, n)
    y = 2 * x + 1 + rng.normal(0, 0.3, n)
    seed = int(rng.integers(0, 2**31))
    first, second = train_sgd(x, y, 0.05, 4, 3, seed, repeat=2)
    first, second = _result(check, first, 3), _result(check, second, 3)
    if first[0] != second[0] or first[1] != second[1]:
        raise check.CheckFailed(
            f"{WHAT}: 同じ seed で結果が変わりました。np.random.default_rng(seed) を使ってください / the same seed gave "
            "different results: create the Generator with np.random.default_rng(seed)")


def _ordered_partitions(n, batch_size):
    seen = {}
    for perm in itertools.permutations(range(n)):
        key = tuple(frozenset(perm[i:i + batch_size]) for i in range(0, n, batch_size))
        seen.setdefault(key, [np.array(sorted(s)) for s in key])
    return list(seen.items())


def _replay(x, y, lr, orders, w, b):
    for order in orders:
        for idx in order:
            r = y[idx] - (w * x[idx] + b)
            w, b = w - lr * np.sum(-r * x[idx]) / len(idx), b - lr * np.sum(-r) / len(idx)
    return w, b


@test_case(points=None, hidden=True)
def reshuffles_every_epoch(train_sgd, rng, check, config):
    n, batch_size, lr = 5, 2, 0.3
    x = rng.uniform(-1, 1, n)
    y = rng.uniform(-3, 3, n)
    partitions = _ordered_partitions(n, batch_size)
    outcomes = [(k1 == k2, _replay(x, y, lr, (o1, o2), 1.0, 2.0))
                for (k1, o1), (k2, o2) in itertools.product(partitions, repeat=2)]
    seeds = [int(s) for s in rng.integers(0, 2**31, 6)]
    same_order, results = [], set()
    for seed in seeds:
        w, b, _ = _result(check, train_sgd(x, y, lr, batch_size, 2, seed), 2)
        results.add((round(w, 9), round(b, 9)))
        tol = config.SGD_TRAJECTORY_RTOL
        matches = [same for same, (rw, rb) in outcomes
                   if check.close(rw, w, tol, 1e-9) and check.close(rb, b, tol, 1e-9)]
        if not matches:
            raise check.CheckFailed(
                f"{WHAT}: ミニバッチ SGD の結果として再現できませんでした。各エポックで全サンプルを 1 回ずつ使い、ミニバッチの"
                "平均勾配で更新しているか確認してください / the result is not what minibatch SGD gives: every epoch "
                "must use each sample once, and each step the mean gradient of its minibatch")
        same_order.append(all(matches))
    if all(same_order):
        raise check.CheckFailed(
            f"{WHAT}: 毎エポック同じ順番でミニバッチを使っています。エポックごとに minibatch_indices を呼んで並び替えて"
            "ください / every epoch uses the same minibatch order: reshuffle (call minibatch_indices) every epoch")
    if len(results) == 1:
        raise check.CheckFailed(
            f"{WHAT}: seed を変えても結果が同じです。np.random.default_rng(seed) を使ってください / different seeds "
            "give the same result: use np.random.default_rng(seed)")
