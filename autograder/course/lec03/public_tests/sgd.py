"""Public self-check for train_sgd (students see this file; grading uses other, hidden tests).

train_sgd is judged relative to your own helpers: when your `minibatch_indices` or `gd_step` fails its own
self-check, the checks here that depend on it are left out (a note says so), and `losses` is compared with
your own `loss`. So a bug in a helper fails the helper's self-check only.
"""
import itertools

import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "sgd"
points = 10

X = np.linspace(0.0, 1.0, 20)
Y = 3.0 * X + 2.0          # an exact line: SGD must find w = 3, b = 2

# the tiny data set of the reshuffle check: 5 samples, batches of 2, 2 epochs
TINY_X = np.array([-0.8, -0.3, 0.1, 0.5, 0.9])
TINY_Y = np.array([1.5, -2.0, 0.7, 2.6, -1.1])
TINY_LR = 0.3
SEEDS = (0, 1, 2, 3, 4, 5)


def _note(text):
    print(f"  [sgd] {text}")


def _result(value, n_epochs):
    assert isinstance(value, (tuple, list)) and len(value) == 3, \
        "train_sgd は (w, b, losses) の 3 つを返してください / train_sgd must return (w, b, losses)"
    w, b, losses = value
    assert np.ndim(w) == 0 and np.ndim(b) == 0, "w と b はスカラーにしてください / w and b must be scalars"
    assert len(losses) == n_epochs, (
        f"losses はエポックごとに 1 つ ({n_epochs} 個) のはずですが {len(losses)} 個でした / "
        f"losses must hold one value per epoch ({n_epochs}), got {len(losses)}")
    return (float(w), float(b), [float(v) for v in losses])


def _helper_problem(minibatch_indices, gd_step):
    """None when your helpers behave as their tasks say on a small example; otherwise which one does not."""
    try:
        batches = minibatch_indices(5, 2, np.random.default_rng(0))
        again = minibatch_indices(5, 2, np.random.default_rng(0))
        sizes = [len(i) for i in batches]
        together = sorted(int(i) for idx in batches for i in np.asarray(idx).ravel())
        same = [np.asarray(i).tolist() for i in batches] == [np.asarray(i).tolist() for i in again]
        if sizes != [2, 2, 1] or together != list(range(5)) or not same:
            return "minibatch_indices"
    except Exception:
        return "minibatch_indices"
    try:
        # the step of the task on a small example: (w, b) - lr * gradient / N = (1.3, 1.2)
        w_new, b_new = gd_step(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0]), 1.0, 1.0, 0.3)
        if not (np.isclose(float(w_new), 1.3) and np.isclose(float(b_new), 1.2)):
            return "gd_step"
    except Exception:
        return "gd_step"
    return None


@test_case(points=None, hidden=False)
def test_converges_on_a_line(train_sgd, minibatch_indices, gd_step):
    assert callable(train_sgd), "train_sgd が定義されていません / train_sgd is not defined"
    w, b, losses = _result(train_sgd(X, Y, lr=0.5, batch_size=5, n_epochs=300, seed=0), 300)
    problem = _helper_problem(minibatch_indices, gd_step)
    if problem is not None:
        _note(f"{problem} が自己チェックに通らないため、収束の確認は省略しました (先に {problem} を直してください) / "
              f"convergence not checked because {problem} fails its self-check (fix {problem} first)")
        return
    assert np.isclose(w, 3.0, atol=1e-3) and np.isclose(b, 2.0, atol=1e-3), (
        f"y = 3x + 2 の点なので (3, 2) に近づくはずですが {(w, b)} でした / "
        f"on y = 3x + 2 SGD should reach (3, 2), got {(w, b)}")
    assert losses[-1] < losses[0], "損失が減っていません / the loss does not decrease"


@test_case(points=None, hidden=False)
def test_losses_and_seed(train_sgd, loss, minibatch_indices):
    w1, b1, losses1 = _result(train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5), 3)
    w2, b2, losses2 = _result(train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5), 3)
    try:
        helper_repeats = [np.asarray(i).tolist() for i in minibatch_indices(20, 6, np.random.default_rng(5))] == \
            [np.asarray(i).tolist() for i in minibatch_indices(20, 6, np.random.default_rng(5))]
    except Exception:
        helper_repeats = False
    if helper_repeats:
        assert (w1, b1) == (w2, b2) and losses1 == losses2, (
            "同じ seed なら同じ結果になるはずです (np.random.default_rng(seed) を使ってください) / "
            "the same seed must give the same result (use np.random.default_rng(seed))")
    else:
        _note("minibatch_indices が自己チェックに通らないため、seed の確認は省略しました / "
              "the seed check is left out because minibatch_indices fails its self-check")
    # the loss on the whole training set after the last epoch: by the task's formula, or by your own `loss`
    candidates = [0.5 * np.sum((Y - w1 * X - b1) ** 2)]
    if callable(loss):
        try:
            candidates.append(float(loss(X, Y, w1, b1)))
        except Exception:
            pass
    assert any(np.isclose(losses1[-1], c) for c in candidates), (
        "losses[k] は (k+1) エポック目の後の訓練データ全体での損失 loss(x, y, w, b) にしてください "
        "(losses[0] は 1 エポック目の後) / losses[k] must be the loss on the whole training set after epoch "
        "k + 1 (losses[0] after the first epoch), not on the last minibatch")
    w0, b0, _ = _result(train_sgd(X, Y, lr=0.0, batch_size=6, n_epochs=1, seed=5), 1)
    assert (w0, b0) == (1.0, 2.0), (
        f"lr = 0 なら初期値 (w0, b0) = (1, 2) のままのはずですが {(w0, b0)} でした / "
        f"with lr = 0 the start (w0, b0) = (1, 2) must stay, got {(w0, b0)}")


def _orders(n, batch_size):
    """Every way one epoch can cut range(n) into minibatches: (key, list of index arrays)."""
    seen = {}
    for perm in itertools.permutations(range(n)):
        key = tuple(frozenset(perm[i:i + batch_size]) for i in range(0, n, batch_size))
        seen.setdefault(key, [np.array(sorted(s)) for s in key])
    return list(seen.items())


def _task_step(x, y, w, b, lr):
    r = y - (w * x + b)
    return w - lr * np.sum(-r * x) / len(x), b - lr * np.sum(-r) / len(x)


def _replay(step, orders, w=1.0, b=2.0):
    for order in orders:
        for idx in order:
            w, b = step(TINY_X[idx], TINY_Y[idx], w, b, TINY_LR)
            w, b = float(w), float(b)
    return w, b


@test_case(points=None, hidden=False)
def test_reshuffles_every_epoch(train_sgd, minibatch_indices, gd_step):
    # SGD is replayed on 5 samples (batches of 2, 2 epochs) for every pair of epoch orders; your result
    # shows which pair your train_sgd used. Every seed matching a pair with the same order twice means the
    # batches were not reshuffled between the epochs.
    if _helper_problem(minibatch_indices, gd_step) == "minibatch_indices":
        _note("minibatch_indices が自己チェックに通らないため、並べ替えの確認は省略しました / "
              "the reshuffle check is left out because minibatch_indices fails its self-check")
        return
    steps = [_task_step]
    if _helper_problem(minibatch_indices, gd_step) == "gd_step" and callable(gd_step):
        steps.append(gd_step)     # your own gd_step, in case train_sgd uses it (it differs from the task's step)
    orders = _orders(len(TINY_X), 2)
    outcomes = []                 # (same order in both epochs?, (w, b) after the two epochs)
    for step in steps:
        try:
            after_first = [(k1, _replay(step, [o1])) for k1, o1 in orders]
            outcomes += [(k1 == k2, _replay(step, [o2], *wb)) for k1, wb in after_first for k2, o2 in orders]
        except Exception:
            pass
    same_order = []
    for seed in SEEDS:
        w, b, _ = _result(train_sgd(TINY_X, TINY_Y, TINY_LR, 2, 2, seed), 2)
        matches = [same for same, (rw, rb) in outcomes
                   if np.isclose(rw, w, rtol=1e-4, atol=1e-9) and np.isclose(rb, b, rtol=1e-4, atol=1e-9)]
        assert matches, (
            "ミニバッチ SGD の結果として再現できませんでした。各エポックで全サンプルを 1 回ずつ使い、ミニバッチの平均勾配"
            "で更新しているか確認してください / the result is not what minibatch SGD gives: every epoch must use "
            "each sample once, and each step the mean gradient of its minibatch")
        same_order.append(all(matches))
    assert not all(same_order), (
        "毎エポック同じ順番でミニバッチを使っています。エポックごとに minibatch_indices を呼んで並び替えてください / "
        "every epoch uses the same minibatch order: reshuffle (call minibatch_indices) every epoch")
