"""Faults are results, not crashes: hangs, dead processes, bombs and unreadable files each become a status
and a message, the cells after a bad cell still run and score, and nothing outlives the grader.

Hangs are graded in a child Python under shorter limits than grader_config's (a 10 s cell limit instead of
300 s, a 5 s call limit instead of 20 s): the same code paths, a fraction of the wait.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import notebook_variants as nv
import pytest

from autograder import layout
from autograder.grade import grade_notebook

NUMPY = nv.NUMPY_QUESTIONS
SHORT_LIMITS = {"cell_timeout_s": 10, "call_timeout_s": 5}


def base() -> dict:
    return nv.lean(nv.solution())


def cell_number(nb: dict, marker: str) -> int:
    """The 1-based number of the code cell containing ``marker`` (as grade.py's messages count)."""
    return next(i + 1 for i, s in enumerate(nv.code_sources(nb)) if marker in s)


def _only_mae_lost(r: dict, words: str) -> None:
    """mae's part of metrics scores 0 with ``words`` in its message; mse and rmse keep theirs."""
    metrics = r["questions"]["metrics"]
    assert metrics["parts"]["mae"]["score"] == 0.0, metrics["parts"]
    assert metrics["score"] == metrics["max_score"] - metrics["parts"]["mae"]["max_score"], metrics["parts"]
    assert any(words in m for m in nv.failed_messages(r, "metrics")), nv.failed_messages(r, "metrics")


# --- the faults ------------------------------------------------------------------------------------------
def cell_loops() -> dict:
    """Two endless cells: one the alarm can stop, one that ignores SIGALRM (only the parent's deadline and a
    fresh child get past it); the functions defined after them must still score."""
    nb = nv.insert_after_def(base(), "fit_normal_equation", """
        # LOOP-1: waiting for something that never comes
        import time
        while True:
            try:
                time.sleep(1)
            except Exception:
                pass
        """)
    return nv.insert_after_def(nb, "gradient", """
        # LOOP-2: signals ignored
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        x = 0
        while True:
            x += 1
        """)


def function_loop() -> dict:
    """gd_step never returns (a `while` whose condition never changes); the notebook's own cells that call it
    hang too."""
    return nv.replace_def(base(), "gd_step", """
        def gd_step(x, y, w, b, lr):
            dE_dw, dE_db = gradient(x, y, w, b)
            n = len(x)
            while n > 0:
                w, b = w - lr * dE_dw / n, b - lr * dE_db / n
            return w, b
        """)


def crashes() -> dict:
    """os._exit in one cell, a segfault (ctypes.string_at(0)) in another, a segfault inside mae."""
    nb = nv.insert_after_def(base(), "fit_normal_equation", "# EXIT\nimport os\nos._exit(1)")
    nb = nv.insert_after_def(nb, "gradient", "# SEGV\nimport ctypes\nctypes.string_at(0)")
    return nv.replace_def(nb, "mae", """
        def mae(y, y_hat):
            import ctypes
            return float(len(ctypes.string_at(0)))
        """)


def memory() -> dict:
    """Memory bombs: 20 GB at once, a list that grows until the limit (freed when the cell fails), and mae
    asking for 20 GB."""
    nb = nv.insert_after_def(base(), "fit_normal_equation", "# BIG\nbig = np.zeros((50_000, 50_000))", """
        # GROW
        def grow():
            chunks = []
            while True:
                chunks.append(np.ones(10**8))
        grow()
        """)
    return nv.replace_def(nb, "mae", """
        def mae(y, y_hat):
            error = np.asarray(y, dtype=float) - np.asarray(y_hat, dtype=float)
            weights = np.ones((len(error), 10**9))
            return float(np.mean(np.abs(error)))
        """)


def process_bomb() -> dict:
    """The first cell starts processes until the process limit says no, and leaves them sleeping; every
    cell after it, the imports included, must still run."""
    return nv.prepend_cells(base(), """
        # BOMB
        import os, time
        children = []
        while True:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(10 ** 6)
                os._exit(0)
            children.append(pid)
        print(len(children), "processes started")
        """)


def fork_bomb_cell() -> dict:
    """The classic fork bomb as the first cell: every process forks forever. The alarm stops the cell; what
    it started must not starve or outlive it (before the imports, so the next cell needs threads)."""
    return nv.prepend_cells(base(), """
        # FORK
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """)


def huge_output() -> dict:
    """An honest notebook that prints far too much: a cell prints 1 GiB, train_sgd prints every step."""
    nb = nv.insert_after_def(base(), "fit_normal_equation", """
        # FLOOD
        import os
        for i in range(1024):
            print("x" * 2**20)
        os.write(1, b"y" * 2**28)
        """)
    return nv.edit_def(nb, "train_sgd", "            w, b = gd_step(x[idx], y[idx], w, b, lr)\n",
                       "            w, b = gd_step(x[idx], y[idx], w, b, lr)\n"
                       "            print('step', w, b, x[idx], y[idx])\n")


FAULTS = {  # name -> (builder, grading options)
    "cell_loops": (cell_loops, {"limits": SHORT_LIMITS, "timeout": 200}),
    "function_loop": (function_loop, {"limits": SHORT_LIMITS, "timeout": 200}),
    "crashes": (crashes, {}),
    "memory": (memory, {}),
    "process_bomb": (process_bomb, {"isolated": True, "timeout": 300}),
    "huge_output": (huge_output, {}),
    # alone, after the others: while it spins it would starve a neighbour's grade of CPU
    "fork_bomb_cell": (fork_bomb_cell, {"limits": SHORT_LIMITS, "timeout": 300, "alone": True}),
}


@pytest.fixture(scope="module")
def results(grader):
    together = {name: (build, options) for name, (build, options) in FAULTS.items() if not options.get("alone")}
    results = grader.many(together)
    for name, (build, options) in FAULTS.items():
        if options.get("alone"):
            results.update(grader.many({name: (build, {k: v for k, v in options.items() if k != "alone"})}))
    return results


def _lost(result, questions):
    return {q: nv.failed_messages(result, q) for q in questions if result["questions"][q]["score"] != nv.full(q)}


def test_endless_cells_are_stopped_and_later_cells_score(results):
    nb = cell_loops()
    r = results["cell_loops"]
    assert r["status"] == "timeout", r["message"]
    loops = [cell_number(nb, "LOOP-1"), cell_number(nb, "LOOP-2")]
    assert [c["status"] for c in r["cells"] if c["index"] + 1 in loops] == ["timeout", "timeout"]
    assert "ran past the time limit" in r["message"] and f"{loops[0]}, {loops[1]}" in r["message"], r["message"]
    assert not _lost(r, NUMPY)


def test_an_endless_graded_function_costs_its_question_only(results):
    r = results["function_loop"]
    assert r["status"] == "timeout", r["message"]
    assert r["questions"]["gd_step"]["score"] == 0.0
    assert any("無限ループ" in m for m in nv.failed_messages(r, "gd_step")), nv.failed_messages(r, "gd_step")
    assert "did not finish in time" in r["message"], r["message"]
    assert not _lost(r, [q for q in NUMPY if q != "gd_step"])


def test_crashes_in_cells_and_functions_are_recorded_and_survived(results):
    nb = crashes()
    r = results["crashes"]
    assert r["status"] == "crashed", r["message"]
    dead = [cell_number(nb, "# EXIT"), cell_number(nb, "# SEGV")]
    assert [c["status"] for c in r["cells"] if c["index"] + 1 in dead] == ["crashed", "crashed"]
    assert "stopped the Python process" in r["message"] and f"{dead[0]}, {dead[1]}" in r["message"]
    assert "died while a graded function ran" in r["message"]
    _only_mae_lost(r, "停止")
    assert not _lost(r, [q for q in NUMPY if q != "metrics"])


def test_memory_bombs_fail_cleanly(results):
    nb = memory()
    r = results["memory"]
    assert r["status"] == "ok", r["message"]
    bombs = [cell_number(nb, "# BIG"), cell_number(nb, "# GROW")]
    errors = [c["error"]["ename"] for c in r["cells"] if c["index"] + 1 in bombs]
    assert errors == ["MemoryError", "MemoryError"], r["cells"]
    _only_mae_lost(r, "MemoryError")
    assert not _lost(r, [q for q in NUMPY if q != "metrics"])


def test_a_process_bomb_does_not_take_the_later_cells_with_it(results):
    """Processes a cell leaves behind keep RLIMIT_NPROC (threads count too) used up: the next cell's
    ``import numpy`` failed with "can't start new thread", so every answer after the bomb scored 0."""
    r = results["process_bomb"]
    broken = [(c["index"] + 1, c["error"]["evalue"][:80]) for c in r["cells"][1:] if c["status"] != "ok"]
    assert not broken, broken
    assert not _lost(r, NUMPY)


def test_a_fork_bomb_cell_is_stopped_and_cleaned_up(results):
    nb = fork_bomb_cell()
    r = results["fork_bomb_cell"]
    assert r["status"] == "timeout", r["message"]
    bomb = cell_number(nb, "# FORK")
    assert [c["status"] for c in r["cells"] if c["index"] + 1 == bomb] == ["timeout"]
    broken = [(c["index"] + 1, c["error"]["evalue"][:80]) for c in r["cells"] if c["status"] == "error"]
    assert not broken, broken
    assert not _lost(r, NUMPY)


def test_huge_output_is_capped_and_scores(results):
    r = results["huge_output"]
    assert r["status"] == "ok", r["message"]
    assert not _lost(r, NUMPY)
    assert len(json.dumps(r)) < 200_000


# --- files that are not notebooks ------------------------------------------------------------------------------
def _not_notebooks(tmp_path):
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as f:
        f.truncate(51 * 2**20)          # sparse: over MAX_NOTEBOOK_BYTES without writing it
    solution_json = nv.dumps(nv.solution())
    files = {
        "random_bytes.ipynb": os.urandom(4096),
        "script_renamed.ipynb": (layout.ROOT / "autograder" / "grade.py").read_bytes(),
        "empty.ipynb": b"",
        "json_list.ipynb": b"[1, 2, 3]",
        "json_object.ipynb": json.dumps({"hello": "world"}).encode(),
        "nbformat_5.ipynb": json.dumps({"nbformat": 5, "cells": []}).encode(),
        "cells_not_a_list.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": "code"}).encode(),
        "source_not_text.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                            "cells": [{"cell_type": "code", "source": 42}]}).encode(),
        "truncated.ipynb": solution_json[: len(solution_json) // 2],
        "utf16.ipynb": solution_json.decode("utf-8").encode("utf-16"),
        "latin1_garbage.ipynb": b'{"nbformat": 4, "cells": [], "x": "\xff\xfe"}'.replace(b"\\xff", b"\xff"),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    paths["big.ipynb"] = big
    return paths


def test_a_file_the_grader_cannot_read_is_its_own_fault_not_a_zero(tmp_path):
    """A notebook the grader's copy of which is gone (a sweep, a moved folder) or is no file: not a student's
    upload, so no score (exported blank, graded again by the next batch), with what happened."""
    (tmp_path / "directory.ipynb").mkdir()
    for path in (tmp_path / "missing.ipynb", tmp_path / "directory.ipynb"):
        r = grade_notebook(path)
        assert r["status"] == "sandbox_error" and "could not read the notebook's file" in r["message"], path
        assert r["cells"] == [], path


def test_unreadable_files_are_invalid_with_a_message(tmp_path):
    for name, path in _not_notebooks(tmp_path).items():
        started = time.monotonic()
        r = grade_notebook(path)
        json.dumps(r)
        assert r["status"] == "invalid", (name, r["status"], r["message"])
        assert r["message"] and "ノートブック" in r["message"], (name, r["message"])
        assert r["total"] == 0.0 and set(r["questions"]) == set(nv.ALL_QUESTIONS), name
        assert all(q["checks"] and not q["checks"][0]["passed"] for q in r["questions"].values()), name
        assert time.monotonic() - started < 5, name   # refused before any sandbox starts
        # the bytes that were judged (a batch checks they are the ones it read); too large: never read
        expected = None if name == "big.ipynb" else hashlib.sha256(path.read_bytes()).hexdigest()
        assert r["submission_sha256"] == expected, name


def test_killing_the_grader_ends_its_sandbox(tmp_path):
    """SIGKILL of the grading process must take the sandbox with it (a batch worker killed by a TA, the OOM
    killer...). jail.py sets PR_SET_PDEATHSIG before setresuid() to the sandbox uid, and a change of
    effective uid clears the parent-death signal: the namespace's PID 1 and the student's code lived on."""
    # the first cell sleeps: once it runs, the harness writes nothing more (a write to the dead parent's
    # pipe would end it with SIGPIPE and hide the problem)
    nb = nv.prepend_cells(base(), "import time\ntime.sleep(600)")
    path = nv.write(nb, tmp_path / "sleeps-after-grader-death.ipynb")
    code = "import sys\nfrom autograder.grade import grade_notebook\ngrade_notebook(sys.argv[1])\n"
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=layout.ROOT,
                            env=dict(os.environ, PYTHONPATH=str(layout.ROOT)))
    try:
        deadline = time.monotonic() + 60
        while not nv.sandbox_pids(str(path)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert nv.sandbox_pids(str(path)), "the sandbox never started"
        time.sleep(8)  # the sandbox is up and the harness is inside the first cell
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while nv.sandbox_pids(str(path)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not nv.sandbox_pids(str(path)), "sandbox processes outlived the grader"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        nv.kill_sandboxes(str(path))
