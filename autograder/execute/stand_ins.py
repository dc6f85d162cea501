"""What the hidden tests receive in place of the student's names.

A ``StandIn`` looks like the student's function to a test, but calling it runs the student's function in
the sandbox and returns only plain data (numbers, lists, numeric arrays). A failed call raises
``CallFailed`` with a student-facing message. While it runs, the helpers it may call are the reference's or
the student's own (``Helpers``). ``oracle`` wraps a trusted reference function so that it can
stand in for one of the student's helpers during a call (``gd_step`` calling ``gradient``): the child then
asks the parent, which computes the answer here; the reference code never enters the sandbox.
"""
from __future__ import annotations

import inspect
from collections import defaultdict

import numpy as np

from autograder.check.vocabulary import CallFailed
from autograder.execute.child.protocol import RngState
from autograder.execute.session import CallResult, Session

MAX_ORACLE_N = 1_000_000


def explain_failure(name: str, result: CallResult) -> str:
    if result.status == "undefined":
        return f"{name} が定義されていません / {name} is not defined in the notebook"
    if result.status == "timeout":
        return f"{name} が制限時間内に終わりませんでした (無限ループ?) / {name} {result.message} (an endless loop?)"
    if result.message.startswith("not run"):  # refused by the sandbox's restart limit or time budget
        return f"{name} は実行されませんでした / {name} was {result.message}"
    if result.status == "crashed":
        return f"{name} の実行中に Python が停止しました / the notebook's Python process died while {name} ran"
    if result.status == "protocol":
        return f"{name} の結果を受け取れませんでした / {name}'s result could not be read ({result.message})"
    if result.message.startswith("NotImplementedError"):
        return f"{name} はまだ実装されていません / {name} is not implemented yet (it raises NotImplementedError)"
    return f"{name} がエラーを出しました / {name} raised {result.message}"


class CallLog:
    """Seconds spent in the student's code per question, and the calls that hung or crashed."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.faults: list[str] = []   # "timeout" / "crashed", one per failed call

    def record(self, question: str, result: CallResult) -> None:
        self.seconds[question] += result.seconds
        if result.status in ("timeout", "crashed"):
            self.faults.append(result.status)


class Helpers:
    """Which helpers a graded function runs with: the reference's (``own`` False: the helpers it may call
    are oracles while it runs) or the student's own (``own`` True). The runner judges each case both ways
    when the first fails, so a helper's mistake is charged to the helper's question once."""

    def __init__(self, oracles: dict, calls: dict[str, tuple[str, ...]]):
        self.oracles, self.calls, self.own, self.used = oracles, calls, False, False

    def for_call(self, name: str) -> dict | None:
        names = [n for n in self.calls.get(name, ()) if n in self.oracles]
        if not names:
            return None
        self.used = True
        return None if self.own else {n: self.oracles[n] for n in names}


class StandIn:
    def __init__(self, session: Session, name: str, timing: CallLog, question: str, timeout: float,
                 helpers: Helpers | None = None):
        self._session, self._name, self._timing = session, name, timing
        self._question, self._timeout, self._helpers = question, timeout, helpers
        self.__name__ = name

    def __call__(self, *args, repeat: int = 1, timeout: float | None = None):
        oracles = self._helpers.for_call(self._name) if self._helpers else None
        result = self._session.call(self._name, list(args), oracles=oracles, repeat=repeat,
                                    timeout=timeout or self._timeout)
        self._timing.record(self._question, result)
        if not result.ok:
            raise CallFailed(explain_failure(self._name, result), result.status)
        return result.value


class Probes:
    """The PyTorch question's calls (``sandbox.probe("get_device", cuda=True)``)."""

    def __init__(self, session: Session, timing: CallLog, question: str, timeout: float):
        self._session, self._timing, self._question, self._timeout = session, timing, question, timeout

    def __call__(self, probe: str, what: str, timeout: float | None = None, **payload):
        result = self._session.probe(probe, timeout=timeout or self._timeout, **payload)
        self._timing.record(self._question, result)
        if not result.ok:
            raise CallFailed(explain_failure(what, result), result.status)
        return result.value


# --- oracles: trusted functions the child may call during one call -----------------------------------------
def _floats(value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.size > MAX_ORACLE_N or not np.all(np.isfinite(array)):
        raise ValueError("argument out of range")
    return array


def oracle(fn, arrays: int):
    """Wrap ``fn`` (numbers in, numbers out). The first ``arrays`` arguments are coerced to float64
    arrays, the rest to floats."""

    def call(*args):
        coerced = [_floats(a) if i < arrays else float(_floats(a)) for i, a in enumerate(args)]
        return fn(*coerced), None

    call.params = list(inspect.signature(fn).parameters)
    return call


def rng_from_state(state: dict) -> np.random.Generator:
    if state.get("bit_generator") != "PCG64":
        raise ValueError("only numpy's default Generator (PCG64) is supported")
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = dict(state)
    return rng


def rng_state(seed) -> RngState:
    """The state of ``np.random.default_rng(seed)`` (a seed drawn from ``seed`` when it is a Generator),
    to send as an rng argument."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    return RngState(np.random.default_rng(seed).bit_generator.state)
