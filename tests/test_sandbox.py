"""The sandbox itself: what the child can and cannot reach, and faults that must become records."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from autograder import layout
from autograder import assignment
from autograder.grade import config
from autograder.execute.child import protocol
from autograder.execute.session import Session

LIMITS = dict(config().LIMITS, cell_timeout_s=3, notebook_timeout_s=60, call_timeout_s=5, restarts=3)


def run_cells(cells, names=("probe",), **kw):
    session = Session(list(cells), list(names), files=assignment.current().public_files, data_dir=None,
                      limits=dict(LIMITS, **kw), seed=1, threads=1)
    records = session.run_notebook()
    return session, records


def outputs(cells):
    session, records = run_cells(cells)
    session.close()
    return [r.output for r in records], records


def test_repository_secrets_and_grader_are_invisible():
    layout.SECRET_FILE.exists() or layout.SECRET_FILE.write_text("x\n")
    task = assignment.current()
    paths = [layout.CONFIG_FILE, task.folder, task.hidden_tests_dir, task.reference_module, task.solution_dir,
             layout.SECRET_FILE, layout.ROOT / "autograder" / "grade.py", layout.ROOT]
    code = "import os\nfor p in %r:\n    print(p, os.path.exists(p))" % [str(p) for p in paths]
    (out,), _ = outputs([code])
    for p in paths[:-1]:
        assert f"{p} False" in out
    assert f"{layout.ROOT} False" in out or os.path.exists(sys.prefix) and str(layout.ROOT) in sys.prefix


def test_no_network_and_not_root_and_own_pid_namespace():
    code = (
        "import os, socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('NET OPEN')\n"
        "except OSError as e:\n    print('net blocked', e.errno)\n"
        "try:\n    socket.create_connection(('127.0.0.1', 22), timeout=2); print('LOOPBACK OPEN')\n"
        "except OSError as e:\n    print('loopback blocked', e.errno)\n"
        "print('uid', os.getuid(), 'pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
        "print('env', sorted(os.environ))\n"
    )
    (out,), _ = outputs([code])
    assert "NET OPEN" not in out and "net blocked" in out
    assert "LOOPBACK OPEN" not in out
    uid = int(out.split("uid ")[1].split()[0])
    assert uid != os.getuid() or os.getuid() != 0
    assert uid != 0 or os.geteuid() != 0
    pids = eval(out.split("pids ")[1].split("\n")[0])
    assert max(pids) < 50, pids  # a fresh PID namespace: only the jail's own processes
    for secret_var in ("AUTOGRADER_SECRET", "CANVAS_API_TOKEN"):
        assert secret_var not in out


def test_grader_packages_are_read_only():
    import numpy

    target = os.path.join(os.path.dirname(numpy.__file__), "_pwned.py")
    code = f"try:\n    open({target!r}, 'w').write('x'); print('WROTE')\nexcept OSError as e:\n    print('denied', e)"
    (out,), _ = outputs([code])
    assert "WROTE" not in out and "denied" in out
    assert not os.path.exists(target)


def test_cell_timeout_and_crash_do_not_cost_later_cells():
    cells = ["x = 1", "while True:\n    pass", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
             "while True:\n    pass", "import os\nos._exit(7)", "def probe():\n    return x + 1"]
    session, records = run_cells(cells)
    try:
        assert [r.status for r in records] == ["ok", "timeout", "timeout", "crashed", "ok"]
        result = session.call("probe", [])
        assert result.ok and result.value == 2
    finally:
        session.close()


def test_call_timeout_and_crash_are_results():
    cells = ["def probe(kind):\n    import os, time\n    if kind == 'loop':\n        while True: time.sleep(0.01)\n"
             "    if kind == 'exit':\n        os._exit(1)\n    return kind"]
    session, _ = run_cells(cells, call_timeout_s=2)
    try:
        assert session.call("probe", ["loop"]).status == "timeout"
        assert session.call("probe", ["exit"]).status == "crashed"
        again = session.call("probe", ["fine"])  # a fresh child ran the notebook again
        assert again.ok and again.value == "fine"
    finally:
        session.close()


def test_output_is_capped_and_gigabytes_do_not_hurt():
    cells = ["import sys, os\nfor _ in range(200000):\n    print('x' * 1000)\n"
             "os.write(1, b'y' * 10_000_000)", "def probe():\n    return 5"]
    session, records = run_cells(cells, cell_timeout_s=30)
    try:
        assert records[0].status == "ok"
        assert len(records[0].output) < 100_000
        assert session.call("probe", []).value == 5
    finally:
        session.close()


def test_memory_and_process_limits():
    cells = ["try:\n    b = bytearray(20 * 1024**3)\n    print('GOT MEMORY')\nexcept MemoryError:\n    print('memory refused')",
             "import os\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
             "            import time; time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\n"
             "print('forks', n)"]
    (mem, forks), _ = outputs(cells)
    assert "memory refused" in mem
    assert int(forks.split("forks ")[1].split()[0]) < LIMITS["processes"]


def test_no_process_outlives_its_cell_or_the_session():
    marker = f"autograder-orphan-{os.getpid()}"
    start = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', "
             f"{marker!r}], start_new_session=True)")
    cells = [start + "\nimport time; time.sleep(1)\nprint(open('/proc/self/status').read().count('Pid'))",
             "import os\nprint('left', [p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2])",
             start + "\ndef probe():\n    return 1"]
    session, records = run_cells(cells)
    assert [r.status for r in records] == ["ok", "ok", "ok"], [r.error for r in records]
    assert "left []" in records[1].output  # the first cell's background process ended with its cell
    assert marker not in subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    session.close()
    time.sleep(0.5)
    assert marker not in subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout


def test_ipython_magics_work_and_shell_escapes_are_skipped():
    cells = ["%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",
             "!pip install numpy\n%pip install pandas\nx = !ls\nprint('after escapes', x)",
             "%%capture\nprint('hidden')", "%time y = sum(range(10))\nprint('y', y)"]
    outs, records = outputs(cells)
    assert [r.status for r in records] == ["ok", "ok", "ok", "ok"], [r.error for r in records]
    assert "after escapes []" in outs[1]
    assert "y 45" in outs[3]


def test_last_function_bound_to_a_name_is_graded():
    cells = ["def probe(v):\n    return v * 2", "probe = probe(21)",
             "class Criterion:\n    def __call__(self, *a):\n        return -1\nprobe = Criterion()  # like loss = nn.MSELoss()"]
    session, _ = run_cells(cells)
    try:
        assert session.call("probe", [4]).value == 8
    finally:
        session.close()


@pytest.mark.parametrize("bad", [
    {"__ndarray__": "AAAA", "dtype": "|O", "shape": [1]},
    {"__ndarray__": "AAAA", "dtype": "<f8", "shape": [7]},
    {"__pickle__": "gASV"},
    {"__ndarray__": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [-1]},
])
def test_protocol_refuses_what_it_does_not_know(bad):
    with pytest.raises((protocol.ProtocolError, ValueError, TypeError)):
        protocol.decode(bad)


def test_protocol_roundtrip_of_plain_values():
    value = (1, 2.5, [np.arange(3), np.float32(1.5)], "s", None, True)
    back = protocol.decode(protocol.encode(value))
    assert back[0] == 1 and back[1] == 2.5 and np.array_equal(back[2][0], np.arange(3))
    assert back[2][1] == 1.5 and back[3:] == ("s", None, True)


def test_protocol_caps_message_size():
    r, w = os.pipe()
    protocol.send(w, {"blob": "x" * 5000})
    with pytest.raises(protocol.ProtocolError):
        protocol.recv(r, max_bytes=1000)
    os.close(r)
    os.close(w)


def test_python_installed_under_tmp_stays_visible(monkeypatch):
    """A CI clone under /tmp holds the venv there: the child's /tmp tmpfs must not hide it."""
    import tempfile

    with tempfile.TemporaryDirectory(dir="/tmp") as fake_prefix:
        with open(os.path.join(fake_prefix, "marker.txt"), "w") as f:
            f.write("here")
        os.chmod(fake_prefix, 0o755)
        monkeypatch.setattr(sys, "exec_prefix", fake_prefix)
        (out,), records = outputs([f"print(open({os.path.join(fake_prefix, 'marker.txt')!r}).read())"])
    assert records[0].status == "ok", records[0].error
    assert "here" in out


def test_a_child_that_dies_before_any_cell_is_the_graders_fault_not_the_students():
    """The harness runs the assignment's probes.py before the first cell: if it fails there, nothing of the
    student's ran, so no cell is blamed and the grade is a sandbox_error (graded again), never a 0."""
    from autograder.execute.session import SandboxUnavailable

    session = Session(["x = 1"], ["probe"], files=assignment.current().public_files, data_dir=None,
                      limits=LIMITS, seed=1, threads=1, probes="import os\nos._exit(3)\n")
    try:
        with pytest.raises(SandboxUnavailable, match="before the notebook's first cell"):
            session.run_notebook()
        assert session.records == {} and session.defined == []
    finally:
        session.close()
