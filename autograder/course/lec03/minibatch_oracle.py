"""The oracle for ``minibatch_indices(n, batch_size, rng)``: the reference's batches, drawn from the student's
own Generator (sent as its state) in the trusted process."""
from __future__ import annotations

import inspect
import numbers

from autograder.execute.child.protocol import RngState
from autograder.execute.stand_ins import MAX_ORACLE_N, rng_from_state


def minibatch_oracle(fn):
    """Stand-in for ``minibatch_indices(n, batch_size, rng)``: rebuilds the student's Generator from its
    state, runs the reference, and hands back the batches and the Generator's new state."""

    def call(n, batch_size, state):
        if not (isinstance(n, numbers.Integral) and isinstance(batch_size, numbers.Integral)
                and 0 < n <= MAX_ORACLE_N and 0 < batch_size and isinstance(state, RngState)):
            raise ValueError("minibatch_indices(n_samples, batch_size, rng) needs two positive ints and a "
                             "numpy Generator")
        rng = rng_from_state(state)
        batches = fn(int(n), int(batch_size), rng)
        return batches, rng.bit_generator.state

    call.params = list(inspect.signature(fn).parameters)
    return call
