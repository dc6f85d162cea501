"""Public self-check for minibatch_indices (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "minibatches"
points = 10


@test_case(points=None, hidden=False)
def test_partition(minibatch_indices):
    assert callable(minibatch_indices), \
        "minibatch_indices が定義されていません / minibatch_indices is not defined"
    batches = minibatch_indices(10, 4, np.random.default_rng(0))
    sizes = [len(idx) for idx in batches]
    assert sizes != [4, 4], \
        "最後の (小さい) ミニバッチが捨てられています / the last, shorter minibatch is dropped: every sample must appear once per epoch"
    assert sizes == [4, 4, 2], \
        f"10 個を 4 個ずつに分けると大きさ [4, 4, 2] のはずですが {sizes} でした / 10 samples in batches of 4 should give sizes [4, 4, 2], got {sizes}"
    together = np.concatenate([np.asarray(idx) for idx in batches])
    assert np.issubdtype(together.dtype, np.integer), \
        "インデックスは整数の配列にしてください / indices must be integer arrays"
    assert sorted(together.tolist()) == list(range(10)), \
        "各サンプルがちょうど 1 回ずつ現れる必要があります / every sample must appear exactly once"


@test_case(points=None, hidden=False)
def test_shuffled_by_rng(minibatch_indices):
    first = np.concatenate(minibatch_indices(50, 8, np.random.default_rng(1)))
    again = np.concatenate(minibatch_indices(50, 8, np.random.default_rng(1)))
    assert np.array_equal(first, again), (
        "同じ seed の rng なら同じ分割になるはずです。引数の rng を使って並び替えてください (np.random.permutation や "
        "default_rng() ではなく rng.permutation) / the same seed must give the same batches: shuffle with the rng "
        "argument (rng.permutation), not numpy's global RNG or a new Generator")
    assert not np.array_equal(first, np.arange(50)), \
        "インデックスがシャッフルされていません / the indices are not shuffled"
    rng = np.random.default_rng(2)
    epoch1 = np.concatenate(minibatch_indices(50, 8, rng))
    epoch2 = np.concatenate(minibatch_indices(50, 8, rng))
    assert not np.array_equal(epoch1, epoch2), \
        "呼び出すたびに新しい並べ替えが必要です / every call must draw a fresh permutation"
