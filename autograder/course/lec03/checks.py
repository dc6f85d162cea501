"""Lecture 3's own checks, on top of the shared vocabulary (the hidden tests receive this module as
``check``): minibatches as index arrays, and the epoch-partition property of ``minibatch_indices``."""
from __future__ import annotations

import numpy as np

from autograder.check.vocabulary import *  # noqa: F401,F403  (the shared vocabulary: as_float, check_scalar, ...)
from autograder.check.vocabulary import CheckFailed, _describe

import numbers


def as_int_batches(value, what: str) -> list[np.ndarray]:
    """A list of 1-D integer index arrays."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        value = list(value)
    if not isinstance(value, (list, tuple)):
        raise CheckFailed(f"{what} はインデックス配列のリストを返す必要があります / {what} must return a list of "
                          f"index arrays, got {_describe(value)}")
    batches = []
    for batch in value:
        if isinstance(batch, (list, tuple)):
            batch = np.array(batch)
        if isinstance(batch, numbers.Integral) and not isinstance(batch, bool):
            batch = np.array([batch])
        if not isinstance(batch, np.ndarray) or batch.dtype.kind not in "iu" and not (
                batch.dtype.kind == "f" and np.all(np.isfinite(batch)) and np.all(batch == np.round(batch))):
            raise CheckFailed(f"{what}: 各ミニバッチは整数インデックスの配列にしてください / each minibatch must be "
                              "an array of integer indices")
        batches.append(np.asarray(batch, dtype=np.int64).ravel())
    return batches


def is_epoch_partition(batches: list[np.ndarray], n: int, batch_size: int) -> str | None:
    """None when ``batches`` cut a permutation of range(n) into chunks of ``batch_size`` (last shorter);
    otherwise what is wrong, as a student-facing sentence."""
    sizes = [len(b) for b in batches]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    flat = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    if len(flat) < n and sorted(set(flat.tolist())) == sorted(flat.tolist()) and sizes[: len(expected_sizes)] \
            == expected_sizes[: len(sizes)] and len(sizes) == n // batch_size:
        return ("最後の (小さい) ミニバッチが捨てられています / the last, shorter minibatch is dropped: every "
                "sample must appear once per epoch")
    if sorted(flat.tolist()) != list(range(n)):
        return ("1 エポックで各サンプルがちょうど 1 回ずつ使われていません / an epoch must use every index "
                "0..n-1 exactly once (a permutation, not sampling with replacement)")
    if sizes != expected_sizes:
        return ("ミニバッチの大きさが違います (batch_size ずつ、最後だけ小さくてよい) / minibatches must have "
                "batch_size elements each, only the last may be shorter")
    return None
