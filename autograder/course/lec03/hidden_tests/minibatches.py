"""Hidden tests: minibatch_indices(n_samples, batch_size, rng), checked by its properties.

Each call must draw a fresh permutation of range(n) from the *given* Generator and cut it into chunks of
batch_size (the last may be shorter). The sandbox reseeds numpy's global RNG identically before every call,
so code that ignores the given rng returns the same batches for different rng states.
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "minibatches"
points = 10
WHAT = "minibatch_indices"


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


@test_case(points=None, hidden=True)
def each_epoch_is_a_permutation_in_chunks(minibatch_indices, rng, check, stand_in_tools):
    for n, batch_size in ((10, 3), (12, 4), (7, 7), (5, 1), (103, 16)):
        batches = check.as_int_batches(minibatch_indices(n, batch_size, stand_in_tools.rng_state(rng)), WHAT)
        problem = check.is_epoch_partition(batches, n, batch_size)
        if problem:
            raise check.CheckFailed(f"{WHAT}: {problem}")


@test_case(points=None, hidden=True)
def reshuffles_on_every_call(minibatch_indices, rng, check, stand_in_tools):
    first, second = minibatch_indices(20, 6, stand_in_tools.rng_state(rng), repeat=2)
    first, second = check.as_int_batches(first, WHAT), check.as_int_batches(second, WHAT)
    if _same(first, second):
        raise check.CheckFailed(
            f"{WHAT}: 同じ rng で 2 回呼ぶと同じ順番になりました。呼ぶたびに新しい並び替えを rng から引いてください / "
            "two calls with the same Generator gave the same order: draw a new permutation from rng on every call")


@test_case(points=None, hidden=True)
def uses_the_given_rng(minibatch_indices, rng, check, stand_in_tools):
    seed_a, seed_b = (int(s) for s in rng.integers(0, 2**31, 2))
    a1 = check.as_int_batches(minibatch_indices(20, 6, stand_in_tools.rng_state(seed_a)), WHAT)
    a2 = check.as_int_batches(minibatch_indices(20, 6, stand_in_tools.rng_state(seed_a)), WHAT)
    b = check.as_int_batches(minibatch_indices(20, 6, stand_in_tools.rng_state(seed_b)), WHAT)
    if not _same(a1, a2) or _same(a1, b):
        raise check.CheckFailed(
            f"{WHAT}: 引数の rng を使って並び替えてください (np.random.permutation や default_rng() ではなく "
            "rng.permutation) / shuffle with the rng argument (rng.permutation), not numpy's global RNG or a new "
            "Generator: the same rng state must give the same batches, a different state different ones")


@test_case(points=None, hidden=True)
def draws_a_uniform_shuffle(minibatch_indices, rng, check, stand_in_tools):
    """A random rotation (or any fixed stride) of 0..n-1 is a permutation in chunks too, and differs per
    call: it is told apart from a shuffle by its consecutive differences, which a shuffle spreads over all
    values (measured: a true shuffle put at most 7.8 % of the pairs on one difference in 20,000 draws; the
    check allows 25 %)."""
    n, calls = 50, 6
    draws = minibatch_indices(n, n, stand_in_tools.rng_state(rng), repeat=calls)
    perms = []
    for draw in draws:
        batches = check.as_int_batches(draw, WHAT)
        if check.is_epoch_partition(batches, n, n):
            raise check.CheckFailed(f"{WHAT}: {check.is_epoch_partition(batches, n, n)}")
        perms.append(np.concatenate(batches))
    steps = np.concatenate([np.diff(p) % n for p in perms])
    if len({tuple(p) for p in perms}) < calls or np.bincount(steps, minlength=n).max() > 0.25 * len(steps):
        raise check.CheckFailed(
            f"{WHAT}: 並び替えがランダムではありません (回転や決まった間隔の並び) / the order is not a random shuffle "
            "(a rotation or a fixed pattern): use rng.permutation(n_samples)")
