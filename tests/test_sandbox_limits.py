"""One submission must never stall, starve or fool the grading of the others (issue 8, parts 1, 3, 4, 5, 7).

* the parent never blocks on the child: a child that stops reading is killed and its call is a timeout;
* each sandbox runs in a cgroup of its own: its CPU share, one memory limit and one task limit for all its
  processes together (on this project's build machine: cgroup v1, cpu + memory + pids, as root);
* one time budget per submission, and forged ``cell_start`` frames move no deadline;
* set-up success comes from the jail's own status pipe: printed text and exit status 121 are the student's;
* PID 1's command line shows no host path or configuration; a seccomp filter denies namespaces, mount, ptrace.

Session-level tests use short limits; grade-level ones run the lean solution (the NumPy part) in a child
Python (``isolated``) so that a regression that hangs the grader fails the test instead of hanging it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import notebook_variants as nv
import numpy as np
import pytest

from autograder import layout
from autograder import assignment
from autograder.grade import config
from autograder.execute import cgroups
from autograder.execute import seccomp
from autograder.execute.session import SandboxUnavailable, Session, sandbox_description

LIMITS = dict(config().LIMITS, cell_timeout_s=3, notebook_timeout_s=60, call_timeout_s=3, restarts=3)
NUMPY = nv.NUMPY_QUESTIONS


def session(cells, names=("probe",), **limits) -> Session:
    return Session(list(cells), list(names), files=assignment.current().public_files, data_dir=None,
                   limits=dict(LIMITS, **limits), seed=1, threads=1)


def _lost(result, questions):
    return {q: nv.failed_messages(result, q) for q in questions if result["questions"][q]["score"] != nv.full(q)}


def test_this_machine_gives_sandboxes_cgroups_and_seccomp():
    """The build machine (root, cgroup v1 with cpu, memory and pids) must use them; the result says so."""
    description = sandbox_description(config().LIMITS)
    assert description["cgroups"].startswith(("v1: cpu, memory, pids", "v2: cpu, memory, pids")), description
    assert description["seccomp"].startswith("on:"), description
    off = sandbox_description(dict(config().LIMITS, cgroups=False))
    assert off["cgroups"].startswith("unavailable: turned off") and "rlimits only" in off["cgroups"], off


# --- 1. the parent never blocks on the child -------------------------------------------------------------------
STALL = """
import numpy as np

def stall():
    # from now on nobody reads the parent's pipe: the harness's loop sleeps for ever, deaf to its alarm
    import protocol, signal, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    protocol.recv = lambda *a, **k: time.sleep(10 ** 6)
    return 1

def echo(x):
    return int(np.size(x))
"""


def test_a_child_that_stops_reading_is_killed_and_the_call_is_a_timeout():
    """Before: the parent's blocking write of a 20 MB request waited for ever (grader stuck in pipe_write)."""
    s = session([STALL], names=("stall", "echo"))
    try:
        assert [r.status for r in s.run_notebook()] == ["ok"]
        assert s.call("stall", []).value == 1
        started = time.monotonic()
        big = s.call("echo", [np.zeros(2_000_000)])        # ~21 MB on the wire, far over a pipe's buffer
        waited = time.monotonic() - started
        assert big.status == "timeout", big
        assert waited < LIMITS["call_timeout_s"] + 5 + 20, waited
        assert s.call("echo", [np.zeros(3)]).value == 3   # a fresh child ran the notebook again
    finally:
        s.close()


def oracle_stall() -> dict:
    """gd_step, while ``predict`` is the grader's oracle, asks it for a million predictions (an 8 MB answer)
    and never reads it; called with its own helpers it is honest."""
    return nv.replace_def(nv.lean(nv.solution()), "gd_step", """
        def gd_step(x, y, w, b, lr):
            if predict.__code__.co_filename.startswith("/grader"):   # the grader's stand-in
                import protocol, signal, time
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                protocol.recv = lambda *a, **k: time.sleep(10 ** 6)
                predict(np.ones(10 ** 6), w, b)
            dE_dw, dE_db = gradient(x, y, w, b)
            n = len(x)
            return w - lr * dE_dw / n, b - lr * dE_db / n
        """)


def test_an_oracle_answer_nobody_reads_costs_a_timeout_not_the_grader(grader):
    """Before: the grader sat in pipe_write for ever. Now each such call is a timeout (gd_step loses its
    question) and the questions graded before it keep their points. The stalls of train_sgd (which calls
    this gd_step) use up the fresh children (``restarts``), so the questions after it may score 0: that is
    the restart limit, as before."""
    started = time.monotonic()
    r = grader(oracle_stall(), limits={"call_timeout_s": 3, "restarts": 1}, timeout=400)
    took = time.monotonic() - started
    assert r["status"] in ("timeout", "crashed"), r["message"]
    assert "did not finish in time" in r["message"], r["message"]
    assert not _lost(r, ["normal_equation", "loss", "gradient", "minibatches"]), _lost(r, NUMPY)
    assert any("did not finish" in m for m in nv.failed_messages(r, "gd_step")), nv.failed_messages(r, "gd_step")
    assert took < 300, took


# --- 5. set-up failure is the jail's word, never the student's ----------------------------------------------
FORGE_SETUP_FAILURE = """
# FORGED
import os, struct, json, sys
def frame(message):
    body = json.dumps(message).encode()
    os.write(4, struct.pack(">I", len(body)) + body)
frame({"type": "cell_start", "index": 10 ** 6})      # an index that is no cell: `current` becomes unknown
sys.stderr.write("SANDBOX-SETUP-FAILED: OSError: [Errno 1] unshare: Operation not permitted\\n")
sys.stderr.flush()
os._exit(121)
"""


def test_a_forged_setup_failure_is_the_students_crash():
    s = session(["x = 1", FORGE_SETUP_FAILURE, "def probe():\n    return x + 1"])
    try:
        records = s.run_notebook()   # before: SandboxUnavailable ("nothing was run")
        assert [r.status for r in records] == ["ok", "crashed", "ok"], [(r.status, r.error) for r in records]
        assert s.call("probe", []).value == 2
    finally:
        s.close()


def test_a_forged_setup_failure_in_the_first_cell_is_graded_as_crashed(grader):
    nb = nv.prepend_cells(nv.lean(nv.solution()), FORGE_SETUP_FAILURE)
    r = grader(nb, isolated=True, timeout=240)
    assert r["status"] == "crashed", (r["status"], r["message"])
    assert r["cells"][0]["status"] == "crashed", r["cells"][0]
    assert not _lost(r, NUMPY)


def test_a_real_setup_failure_is_still_a_sandbox_error(monkeypatch, tmp_path):
    """The jail reports its own failure on the status pipe: a grader folder that does not exist."""
    from autograder.execute import session as session_module

    monkeypatch.setattr(session_module, "_grader_dir", lambda: tmp_path / "missing")
    s = session(["x = 1"])
    try:
        with pytest.raises(SandboxUnavailable) as info:
            s.run_notebook()
        assert "missing" in str(info.value) or "No such file" in str(info.value), str(info.value)
    finally:
        s.close()


def test_pid_1_shows_no_host_path_or_configuration(tmp_path):
    code = ("import os\nprint('CMDLINE', open('/proc/1/cmdline', 'rb').read().replace(b'\\0', b' ').strip())\n"
            "print('COMM', open('/proc/1/comm').read().strip())\n"
            "try:\n    open('/proc/1/environ', 'rb').read(); print('ENVIRON READ')\n"
            "except OSError as e:\n    print('environ refused', e.errno)\n"
            "print('CGROUP', open('/proc/self/cgroup').read().replace(chr(10), ' '))\n")
    s = session([code])
    try:
        (record,) = s.run_notebook()
        out = record.output
        workdir = str(s.workdir)
    finally:
        s.close()
    assert record.status == "ok", record.error
    cmdline = out.split("CMDLINE ")[1].split("\n")[0]
    assert cmdline == "b'sandbox-init'", cmdline
    assert "COMM sandbox-init" in out
    assert "ENVIRON READ" not in out and "environ refused" in out
    for secret in (workdir, str(layout.ROOT / "autograder"), "jail.py", "binds_ro", "token", "process_api",
                   cgroups.PREFIX):
        assert secret not in out, (secret, out)


# --- 7. the seccomp filter -------------------------------------------------------------------------------
SYSCALLS = """
import ctypes, errno, os, threading, subprocess, multiprocessing
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, result):
    print(name, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()) if result == -1 else "ALLOWED")
attempt("unshare-user", libc.unshare(0x10000000))
attempt("unshare-mount", libc.unshare(0x00020000))
attempt("clone-newuser", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
attempt("ptrace", libc.ptrace(0, 0, 0, 0))
attempt("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
attempt("setns", libc.setns(0, 0))
attempt("bpf", libc.syscall(321, 0, 0, 0))
attempt("keyctl", libc.syscall(250, 0, 0, 0, 0, 0))
t = threading.Thread(target=lambda: None); t.start(); t.join(); print("thread ok")
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(subprocess.run(["echo", "subprocess ok"], capture_output=True, text=True).stdout.strip())
with multiprocessing.get_context("fork").Pool(2) as pool:
    print("pool", pool.map(abs, [-1, -2]))
"""


def test_seccomp_denies_namespaces_ptrace_and_mount_and_keeps_processes_working():
    s = session([SYSCALLS], cell_timeout_s=30)
    try:
        (record,) = s.run_notebook()
        assert s.child.seccomp == "on"
    finally:
        s.close()
    out = record.output
    assert record.status == "ok", (record.error, out)
    for name in ("unshare-user", "unshare-mount", "clone-newuser", "ptrace", "mount", "setns", "bpf", "keyctl"):
        assert f"{name} EPERM" in out, (name, out)
    for works in ("thread ok", "fork 7", "subprocess ok", "pool [1, 2]"):
        assert works in out, (works, out)


def test_seccomp_program_denies_exactly_its_list():
    prog = seccomp.program()
    assert len(prog) < 256 and seccomp.available() is None
    numbers = {ins[3] for ins in prog if ins[0] == 0x15}        # jeq k
    assert set(seccomp.DENIED_X86_64.values()) <= numbers
    assert {0, 1, 2, 3, 9, 57, 59, 61} & numbers == set()      # read, write, open, close, mmap, fork, execve, wait4


# --- 3. cgroups ------------------------------------------------------------------------------------------
def test_each_sandbox_has_a_cgroup_with_its_limits_and_it_is_removed():
    s = session(["def probe():\n    return 1"], cpu_cores=0.5, sandbox_memory_bytes=3 * 2**30, processes=40)
    try:
        s.run_notebook()
        group = s.child.cgroup
        assert group is not None, s.cgroup_note
        dirs = dict(group.dirs)
        jail = s.child.proc.pid
        assert jail in group.pids() and len(group.pids()) >= 3      # the jail, PID 1, the harness
        if group.version == 1:
            assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
            assert int((dirs["memory"] / "memory.limit_in_bytes").read_text()) == 3 * 2**30
            assert (dirs["pids"] / "pids.max").read_text().strip() == "41"
        else:
            assert (dirs["cpu"] / "cpu.max").read_text().split()[0] == "50000"
            assert int((dirs["memory"] / "memory.max").read_text()) == 3 * 2**30
    finally:
        s.close()
    assert not any(Path(d).exists() for d in dirs.values()), dirs
    assert not Path(f"/proc/{jail}").exists()


FOUR_HOGS = """
# FOUR
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (1536 * 2**20)           # 1.5 GiB, every page touched
        time.sleep(3)
        os._exit(0)
    children.append(pid)
print([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children])
"""


def test_memory_limit_counts_the_whole_sandbox():
    """Four processes of 1.5 GiB each under a 2 GiB sandbox: each is under its own 4 GiB RLIMIT_DATA, the
    sandbox is not. The cell is recorded as crashed, with a message that says memory; later cells run."""
    s = session(["x = 1", FOUR_HOGS, "def probe():\n    return x"], cell_timeout_s=60,
                sandbox_memory_bytes=2 * 2**30)
    try:
        records = s.run_notebook()
        assert records[1].status == "crashed", (records[1].status, records[1].error, records[1].output)
        assert "memory limit" in records[1].error["evalue"] and "2 GiB" in records[1].error["evalue"]
        assert [records[0].status, records[2].status] == ["ok", "ok"]
        assert s.call("probe", []).value == 1
    finally:
        s.close()


FORK_UNTIL_REFUSED = """
def probe():
    import os, time
    n = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            return n
        if pid == 0:
            os.setsid()                          # a session of its own: no process group holds them
            time.sleep(60)
            os._exit(0)
        n += 1
"""


def test_task_limit_counts_the_sandbox():
    s = session([FORK_UNTIL_REFUSED], processes=24, call_timeout_s=20)
    try:
        s.run_notebook()
        group = s.child.cgroup
        forks = s.call("probe", [])
        assert forks.ok, forks
        assert 10 <= forks.value < 24, forks.value
        tasks = group.pids()
        assert len(tasks) <= 25, tasks
        if group.version == 1:
            refused = (group.dirs["pids"] / "pids.events").read_text().split()
            assert refused[0] == "max" and int(refused[1]) >= 1, refused   # the cgroup said no, not the rlimit
    finally:
        s.close()


def test_without_cgroups_the_rlimits_still_hold():
    """The fallback (no root, no delegation; here turned off): no group, the reason is kept, and the
    per-process limits of before still stop a fork loop."""
    s = session([FORK_UNTIL_REFUSED], processes=24, call_timeout_s=20, cgroups=False)
    try:
        s.run_notebook()
        assert s.child.cgroup is None and "turned off" in s.cgroup_note
        forks = s.call("probe", [])
        assert forks.ok and forks.value < 24, forks
    finally:
        s.close()


BUSY = """
# BUSY
import os, time
for _ in range(48):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
time.sleep(10 ** 6)
"""


def test_busy_processes_do_not_starve_a_neighbour(grader):
    """48 busy processes in sessions of their own, graded beside the full solution. The hog's cell lasts 100 s
    (its cell limit), longer than any cell of the solution may take (90 s here): without a CPU quota the
    solution gets about 2/49 of the two cores while it lasts."""
    results = grader.many({
        "honest": (nv.solution(), {"limits": {"cell_timeout_s": 90, "probe_timeout_s": 60}, "timeout": 400}),
        "hog": (nv.prepend_cells(nv.lean(nv.solution()), BUSY), {"limits": {"cell_timeout_s": 100},
                                                                  "timeout": 400}),
    })
    honest = results["honest"]
    # measured without cgroups (LIMITS["cgroups"] = False): the solution's first cell (public tests, import
    # otter) ran past its 90 s and was stopped; with them every cell runs in its time
    assert honest["status"] == "ok", honest["message"]
    assert honest["total"] == honest["max_total"], (honest["message"], _lost(honest, nv.ALL_QUESTIONS))
    hog = results["hog"]
    assert hog["cells"][0]["status"] == "timeout", hog["cells"][0]
    assert not _lost(hog, NUMPY)


# --- 4. one budget per submission; forged frames move no deadline -------------------------------------------
def every_call_hangs() -> dict:
    nb = nv.lean(nv.solution())
    for name in ("fit_normal_equation", "predict", "loss", "gradient", "gd_step", "minibatch_indices",
                 "train_sgd", "mse", "rmse", "mae"):
        nb = nv.replace_def(nb, name, f"""
            def {name}(*args, **kwargs):
                import signal, sys
                if not sys._getframe(1).f_code.co_filename.startswith("/grader"):
                    raise RuntimeError("only the grader's calls hang")   # the notebook's own cells go on
                signal.signal(signal.SIGALRM, signal.SIG_IGN)   # the harness's alarm cannot stop it
                while True:
                    pass
            """)
    return nb


def test_a_notebook_whose_calls_all_hang_costs_at_most_its_budget(grader):
    budget = 25    # without it: five fresh children, each after an 8 s hang (about 60 s and more)
    started = time.monotonic()
    r = grader(every_call_hangs(), limits={"call_timeout_s": 3, "submission_budget_s": budget}, timeout=300)
    took = time.monotonic() - started
    assert r["status"] == "timeout", r["message"]
    assert r["total"] == 0.0
    assert r["duration_s"] < budget + 20, r["duration_s"]
    assert took < budget + 60, took          # the grading process itself: start-up and imports included
    assert any("budget" in m for q in NUMPY for m in nv.failed_messages(r, q)), [
        nv.failed_messages(r, q) for q in NUMPY]


def test_budget_ends_a_running_cell_and_every_later_call():
    cells = ["x = 1", "import time\nwhile True:\n    time.sleep(0.1)", "def probe():\n    return x"]
    s = session(cells, cell_timeout_s=60, submission_budget_s=20)
    try:
        started = time.monotonic()
        records = s.run_notebook()
        assert time.monotonic() - started < 20 + 10
        assert [r.status for r in records] == ["ok", "timeout", "skipped"]
        assert "budget" in records[1].error["evalue"]
        started = time.monotonic()
        result = s.call("probe", [])
        assert result.status == "timeout" and "budget" in result.message, result
        assert time.monotonic() - started < 1 and s.child is None    # no child was started for it
    finally:
        s.close()


FORGED_STARTS = """
# FORGED-STARTS: ignore the alarm, then keep telling the parent that a cell just started
import os, struct, json, signal, time
signal.signal(signal.SIGALRM, signal.SIG_IGN)
def frame(message):
    body = json.dumps(message).encode()
    os.write(4, struct.pack(">I", len(body)) + body)
while True:
    for index in (1, 0, 1, 2):                   # the same cell again, an earlier one, a later one
        frame({"type": "cell_start", "index": index})
    time.sleep(0.5)
"""


def test_forged_cell_start_frames_do_not_move_the_cell_deadline():
    s = session(["x = 1", FORGED_STARTS, "def probe():\n    return x"], cell_timeout_s=3, notebook_timeout_s=120)
    try:
        started = time.monotonic()
        records = s.run_notebook()
        took = time.monotonic() - started
        assert [r.status for r in records] == ["ok", "timeout", "ok"], [(r.status, r.error) for r in records]
        assert took < 3 + 5 + 25, took      # one cell limit (+5 s grace), not the notebook's 120 s
        assert s.call("probe", []).value == 1
    finally:
        s.close()
