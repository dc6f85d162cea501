"""The cheat catalog: each attack scores 0 on what it targets, and cannot zero (or hang, or crash) the grader.

Each variant is the solution with the targeted question(s) left as the release's stub (or wrong) plus the
attack, written as an attacker would. Asserted for each: the targeted questions score 0, an honest part
of the same notebook still scores, and grade_notebook returned a result.
Variants without the PyTorch part (``without_mlp``) assert nothing about mlp.
"""
from __future__ import annotations

import notebook_variants as nv
import pytest

HONEST = ("normal_equation", "loss", "gradient", "gd_step", "minibatches", "sgd")


def _base(*blank_names):
    return nv.blank(nv.without_mlp(nv.solution()), *blank_names)


def _assert_targeted_zero_honest_full(result, targeted, honest=HONEST):
    s = nv.scores(result)
    for q in targeted:
        assert s[q] == 0.0, (q, s)
    for q in honest:
        assert s[q] == nv.full(q), (q, s, nv.failed_messages(result, q))


# --- the wire between sandbox and grader: forged frames on fd 4 --------------------------------------------
FORGE = """
import json, os, struct

def _frame(obj_or_bytes):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    os.write(4, struct.pack(">I", len(data)) + data)
"""


def test_forged_deeply_nested_frame_does_not_crash_the_grader(grade):
    """A frame of 200 000 nested JSON lists: json.loads in the parent raises RecursionError (not a
    ValueError), which session._recv does not catch, so grade_notebook raised instead of returning."""
    nb = nv.append_cells(_base("mse", "rmse", "mae"), FORGE + """
_frame(b"[" * 200000 + b"]" * 200000)
""")
    result = grade(nb)
    _assert_targeted_zero_honest_full(result, ["metrics"])


def test_forged_ready_message_does_not_crash_the_grader(grade):
    """A forged "ready" frame whose "defined" is not a list: run_notebook iterated over it (TypeError)."""
    nb = nv.append_cells(_base("mse", "rmse", "mae"), FORGE + """
_frame({"type": "ready", "defined": 5})
""")
    result = grade(nb)
    _assert_targeted_zero_honest_full(result, ["metrics"])


def test_partial_frame_then_silence_does_not_hang_the_grader(tmp_path):
    """A graded function writes a frame header promising 100 bytes, a few of them, then blocks SIGALRM and
    sleeps: the parent's protocol.recv read the rest with a blocking os.read and no deadline, so
    grade_notebook never returned (the same from a notebook cell). The call's deadline must hold."""
    nb = nv.append_cells(_base("rmse", "mae"), FORGE + """
import signal, time

def mse(y, y_hat):
    os.write(4, struct.pack(">I", 100) + b'{"type": "res')
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(10 ** 6)
""")
    path = nv.write(nb, tmp_path / "partial-frame.ipynb")
    result = nv.grade_subprocess(path, timeout=150)
    assert result is not None, "grade_notebook did not return within 150 s (call timeout is 20 s)"
    _assert_targeted_zero_honest_full(result, ["metrics"])
    assert result["status"] in ("timeout", "crashed")
