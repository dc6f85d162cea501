"""Public self-check for minibatch_indices (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "minibatches"
points = 10


@test_case(points=None, hidden=False)
def test_partition(minibatch_indices):
    assert callable(minibatch_indices), \
        "minibatch_indices \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / minibatch_indices is not defined"
    batches = minibatch_indices(10, 4, np.random.default_rng(0))
    sizes = [len(idx) for idx in batches]
    assert sizes == [4, 4, 2], \
        f"10 \u500b\u3092 4 \u500b\u305a\u3064\u306b\u5206\u3051\u308b\u3068\u5927\u304d\u3055 [4, 4, 2] \u306e\u306f\u305a\u3067\u3059\u304c {sizes} \u3067\u3057\u305f / 10 samples in batches of 4 should give sizes [4, 4, 2], got {sizes}"
    together = np.concatenate([np.asarray(idx) for idx in batches])
    assert np.issubdtype(together.dtype, np.integer), \
        "\u30a4\u30f3\u30c7\u30c3\u30af\u30b9\u306f\u6574\u6570\u306e\u914d\u5217\u306b\u3057\u3066\u304f\u3060\u3055\u3044 / indices must be integer arrays"
    assert sorted(together.tolist()) == list(range(10)), \
        "\u5404\u30b5\u30f3\u30d7\u30eb\u304c\u3061\u3087\u3046\u3069 1 \u56de\u305a\u3064\u73fe\u308c\u308b\u5fc5\u8981\u304c\u3042\u308a\u307e\u3059 / every sample must appear exactly once"


@test_case(points=None, hidden=False)
def test_shuffled_by_rng(minibatch_indices):
    first = np.concatenate(minibatch_indices(50, 8, np.random.default_rng(1)))
    again = np.concatenate(minibatch_indices(50, 8, np.random.default_rng(1)))
    assert np.array_equal(first, again), \
        "\u540c\u3058 seed \u306e rng \u306a\u3089\u540c\u3058\u5206\u5272\u306b\u306a\u308b\u306f\u305a\u3067\u3059 (\u6e21\u3055\u308c\u305f rng \u3092\u4f7f\u3063\u3066\u304f\u3060\u3055\u3044) / the same seed must give the same batches (use the rng you are given)"
    assert not np.array_equal(first, np.arange(50)), \
        "\u30a4\u30f3\u30c7\u30c3\u30af\u30b9\u304c\u30b7\u30e3\u30c3\u30d5\u30eb\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / the indices are not shuffled"
    rng = np.random.default_rng(2)
    epoch1 = np.concatenate(minibatch_indices(50, 8, rng))
    epoch2 = np.concatenate(minibatch_indices(50, 8, rng))
    assert not np.array_equal(epoch1, epoch2), \
        "\u547c\u3073\u51fa\u3059\u305f\u3073\u306b\u65b0\u3057\u3044\u4e26\u3079\u66ff\u3048\u304c\u5fc5\u8981\u3067\u3059 / every call must draw a fresh permutation"
