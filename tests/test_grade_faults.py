"""Faults are results, not crashes: hangs, dead processes, bombs and unreadable files each become a status
and a message, the cells after a bad cell still run and score, and nothing outlives the grader."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import notebook_variants as nv

from autograder import layout


def test_killing_the_grader_ends_its_sandbox(tmp_path):
    """SIGKILL of the grading process must take the sandbox with it (a batch worker killed by a TA, the OOM
    killer...). jail.py sets PR_SET_PDEATHSIG before setresuid() to the sandbox uid, and a change of
    effective uid clears the parent-death signal: the namespace's PID 1 and the student's code lived on."""
    # the first cell sleeps: once it runs, the harness writes nothing more (a write to the dead parent's
    # pipe would end it with SIGPIPE and hide the problem)
    nb = nv.prepend_cells(nv.without_mlp(nv.solution()), "import time\ntime.sleep(600)")
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
