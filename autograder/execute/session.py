"""The parent side of the sandbox: start the jailed child, run the notebook, make calls, survive faults.

A ``Session`` owns one child at a time. If the child dies or hangs while running cell k, the cell is
recorded as crashed/timed out and a fresh child runs the notebook again without cell k (so one bad cell
never costs the cells after it). If it dies or hangs during a call, that call fails and the next call
starts a fresh child. Nothing the child sends is trusted: messages are size-capped JSON, decoded into
plain numbers, strings, lists and numeric arrays (``protocol.decode``) and validated by the caller.

The parent never waits on the child without a deadline: reads and writes alike (the pipe to the child is
non-blocking; a child that stops reading is killed and its call is a timeout). Every deadline comes from
the parent's own clock: one budget for the whole submission (``submission_budget_s``), the notebook's and
each cell's and call's limits. The child's ``cell_start``/``cell`` frames only say which cell to blame; a
frame for a cell that already started, one out of order, or a ``cell_start`` while a cell runs moves no
deadline. Set-up success is read from a status pipe that only the jail writes (see jail.py), never from
what the child prints or its exit status. Each child runs in a cgroup of its own (cgroups.py) where the
machine allows it.
"""
from __future__ import annotations

import json
import math
import os
import select
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.execute import cgroups
from autograder.execute import seccomp
from autograder.execute.child import protocol

HERE = Path(__file__).resolve().parent
HOME = "/home/student"
UID_BASE = 200_000
SETUP_TIMEOUT_S = 60      # the jail's set-up (no student code runs yet); past it the machine is at fault
GAP_S = 30                # from a cell's record to the next cell_start or "ready": the harness's own work
WRITE_CHUNK = 1 << 16


class SandboxUnavailable(BaseException):
    """The sandbox could not be set up on this machine (no namespaces, say); no student code ran in the
    child that failed. A BaseException, so that no ``except Exception`` between a hidden test and
    grade_notebook turns the machine's fault into the student's zero (grade_notebook catches it)."""


@dataclass
class CallResult:
    ok: bool
    value: object = None
    status: str = "ok"          # ok | error | timeout | crashed | undefined | protocol
    message: str = ""
    traceback: str = ""
    seconds: float = 0.0


@dataclass
class CellRecord:
    index: int
    status: str
    duration_s: float = 0.0
    error: dict | None = None
    output: str = ""


@dataclass
class _Child:
    proc: subprocess.Popen
    to_child: int
    from_child: int
    output: list = field(default_factory=list)
    reader: protocol.FrameReader | None = None
    cgroup: cgroups.Cgroup | None = None
    oom_seen: int = 0           # the cgroup's OOM kills already blamed on a cell or call
    seccomp: str = "off"


def _grader_dir() -> Path:
    """A private copy of what the child may see of the grader: the harness, the protocol, stubs."""
    return HERE / "child"  # harness.py, protocol.py, stubs/: nothing secret


def _cgroup_limits(limits: dict) -> dict:
    """What a sandbox's cgroup gets: ``cpu_cores`` CPUs, ``sandbox_memory_bytes`` for all its processes and
    tmpfs pages together, and ``processes`` tasks (plus the jail's own, which runs as root)."""
    return {"cgroups": limits.get("cgroups", True), "cpu_cores": float(limits.get("cpu_cores", 1.0)),
            "sandbox_memory_bytes": int(limits.get("sandbox_memory_bytes", limits["memory_bytes"] + 2**30)),
            "sandbox_tasks": int(limits["processes"]) + 1}


DATASET_VIEWS = {"mnist": "MNIST train set and the visible half of the test set (read-only)"}


def sandbox_description(limits: dict, files: tuple[str, ...] = (), datasets: tuple[str, ...] = ()) -> dict:
    """What a sandbox sees and what limits it, as recorded in every result (``files``: the assignment's
    public files; ``datasets``: the shared data sets it mounts)."""
    return {
        "isolation": "namespaces: mount (pivot_root into a minimal read-only view), network (no interfaces), "
                     "pid, ipc, uts, cgroup" + ("" if os.geteuid() == 0 else ", user"),
        "uid": "a uid of its own per sandbox" if os.geteuid() == 0 else "unprivileged uid via user namespace",
        "network": False,
        "visible": ["the OS and Python installation (read-only)", "the submission", *files,
                    *(DATASET_VIEWS.get(name, f"{name} (read-only)") for name in datasets)],
        "limits": {k: limits[k] for k in ("memory_bytes", "cpu_seconds", "file_bytes", "processes",
                                          "open_files", "cell_timeout_s", "call_timeout_s",
                                          "submission_budget_s", "sandbox_memory_bytes", "cpu_cores")
                   if k in limits},
        # "v1: cpu, memory, pids (...)" / "v2: ..." or "unavailable: <why>; per-process rlimits only"
        "cgroups": cgroups.status(_cgroup_limits(limits)),
        "seccomp": seccomp.describe(),
    }


class Session:
    def __init__(self, cells: list[str], graded_names, *, files: dict[str, Path],
                 data_dir: Path | None, limits: dict, seed: int, threads: int, probes: str = ""):
        """``graded_names``: the names whose last binding is graded, as a list (functions) or a dict
        name -> kind ("function", "class", "module"); ``probes``: the assignment's child-side probe code
        (text, sent with the set-up message; nothing secret)."""
        self.cells = cells
        kinds = graded_names if isinstance(graded_names, dict) else dict.fromkeys(graded_names, "function")
        self.kinds = {str(k): str(v) for k, v in kinds.items()}
        self.graded_names = list(self.kinds)
        self.probes = probes
        self.files = files
        self.data_dir = data_dir
        self.limits = limits
        self.seed = seed
        self.threads = threads
        self.skip: set[int] = set()
        self.records: dict[int, CellRecord] = {}
        self.defined: list[str] = []
        self.restarts = 0
        self.spawns = 0
        self.child: _Child | None = None
        self.cgroup_note = ""           # why the last child ran without a cgroup ("" when it had one)
        self.budget_s = float(limits.get("submission_budget_s") or math.inf)
        self.budget_deadline = time.monotonic() + self.budget_s   # one clock for the whole submission
        # named for this process: a later batch removes it if this process is killed (batch/processes.py)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"autograder-sandbox-{os.getpid()}-"))
        os.chmod(self.workdir, 0o700)

    # -- life cycle ------------------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def budget_left(self) -> float:
        return self.budget_deadline - time.monotonic()

    def _budget_message(self) -> str:
        return f"not run: the submission's time budget ({self.budget_s:.0f} s for all its cells and calls) was used up"

    def _kill(self):
        child, self.child = self.child, None
        if child is None:
            return
        for fd in (child.to_child, child.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if child.proc.poll() is None:
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.proc.wait()
        if child.cgroup is not None:
            child.cgroup.remove()

    def _spawn(self) -> _Child:
        """A fresh jailed child, ready for its setup message. Raises SandboxUnavailable when the jail did
        not report ready on its status pipe (nothing of the student's ran), ``_BudgetSpent`` when the
        submission's budget ended first."""
        if self.budget_left() <= 0:
            raise _BudgetSpent()
        parent_in, child_out = os.pipe()
        child_in, parent_out = os.pipe()
        status_in, status_out = os.pipe()
        token = secrets.token_hex(16)
        staging = self.workdir / f"root{self.spawns}"
        self.spawns += 1
        staging.mkdir()
        group = None
        try:
            group = cgroups.Cgroup.create(_cgroup_limits(self.limits))
            self.cgroup_note = ""
        except cgroups.CgroupsUnavailable as exc:
            self.cgroup_note = str(exc.strerror or exc)
        config = self._jail_config(staging, token, group is not None, fds=(child_in, child_out, status_out))
        label = str(self.files.get("submission.ipynb", self.workdir))  # for a TA's `ps`; hidden inside
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(HERE / "jail.py"), "--for", label],
                pass_fds=(child_in, child_out, status_out), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                env={"PATH": "/usr/bin:/bin"},  # nothing of the grader's environment (tokens, secrets) goes in
            )
        except OSError as exc:
            for fd in (parent_in, child_out, child_in, parent_out, status_in, status_out):
                os.close(fd)
            if group is not None:
                group.remove()
            raise SandboxUnavailable(f"the jail could not be started: {exc}") from None
        for fd in (child_in, child_out, status_out):
            os.close(fd)
        os.set_blocking(parent_out, False)
        child = _Child(proc, parent_out, parent_in,
                       reader=protocol.FrameReader(parent_in, self.limits["message_bytes"]), cgroup=group)
        self.child = child
        threading.Thread(target=self._drain, args=(proc.stdout, child.output), daemon=True).start()
        try:
            if group is not None:
                try:
                    group.add(proc.pid)   # before the jail has its configuration: before anything else runs
                except OSError as exc:
                    raise SandboxUnavailable(f"the sandbox could not be put in its cgroup: {exc}") from None
                child.oom_seen = group.oom_kills()
            try:
                proc.stdin.write(json.dumps(config).encode("utf-8"))
                proc.stdin.close()
            except OSError:
                pass  # the jail died: its status pipe says why
            child.seccomp = self._await_ready(status_in, token)
        except BaseException:
            self._kill()
            raise
        finally:
            os.close(status_in)
        return child

    def _jail_config(self, staging: Path, token: str, in_cgroup: bool, fds: tuple[int, int, int]) -> dict:
        """What jail.py reads on its stdin: what to mount read-only, the home's files, the limits, the pipes'
        descriptors (child's in, out, status), the token it echoes when ready, the harness command and its
        whole environment."""
        jail_limits = dict(self.limits)
        if in_cgroup:  # the cgroup counts the sandbox's tasks; the per-uid rlimit is only a backstop
            jail_limits["processes"] = int(self.limits["processes"]) * 4
        python = Path(sys.executable)
        prefixes = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
        return {
            "binds_ro": ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/sys", *prefixes],
            "dev_nodes": ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                          *sorted(str(p) for p in Path("/dev").glob("nvidia*"))],
            "home": HOME,
            "home_files": {name: str(path) for name, path in self.files.items()},
            "home_dirs_ro": {"data": str(self.data_dir)} if self.data_dir else {},
            "grader_dir": str(_grader_dir()),
            "staging": str(staging),
            "tmpfs_bytes": self.limits["tmpfs_bytes"],
            "uid_base": UID_BASE,
            "limits": jail_limits,
            "fd_in": fds[0],
            "fd_out": fds[1],
            "fd_status": fds[2],
            "token": token,
            "argv": [str(python), "-I", "-X", "utf8", "/grader/harness.py"],
            "env": {
                "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "USER": "student",
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": "/tmp/matplotlib", "OMP_NUM_THREADS": str(self.threads),
                "MKL_NUM_THREADS": str(self.threads), "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
                "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
            },
        }

    def _await_ready(self, fd: int, token: str) -> str:
        """Read the jail's status pipe to its end: ``ready <token> seccomp=...`` and nothing else means the
        harness was exec'd. Anything else is the machine's fault (no student code has run)."""
        deadline = min(time.monotonic() + SETUP_TIMEOUT_S, self.budget_deadline)
        data = b""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self.budget_left() <= 0:
                    raise _BudgetSpent()
                raise SandboxUnavailable(f"the sandbox did not finish setting up within {SETUP_TIMEOUT_S} s")
            if poller.poll(min(remaining, 1.0) * 1000):
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk[: max(0, 8192 - len(data))]
        lines = data.decode("utf-8", "replace").splitlines()
        fields = lines[0].split() if len(lines) == 1 else []
        if len(fields) >= 2 and fields[0] == "ready" and secrets.compare_digest(fields[1], token):
            return next((f.split("=", 1)[1] for f in fields[2:] if f.startswith("seccomp=")), "off")
        try:
            self.child.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        reason = "; ".join(line for line in lines if not line.startswith("ready ")).strip()
        raise SandboxUnavailable(reason or f"the jail ended (status {self.child.proc.returncode}) before it was ready")

    def _drain(self, stream, sink: list):
        kept = 0
        for chunk in iter(lambda: stream.read1(65536), b""):
            if kept < self.limits["output_bytes"]:
                sink.append(chunk[: self.limits["output_bytes"] - kept])
                kept += len(sink[-1])

    def _send(self, message: dict, deadline: float) -> str:
        """Write one frame to the child before ``deadline``: "ok", "timeout" (it stopped reading) or
        "closed" (it is gone). Never blocks past the deadline."""
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        view = memoryview(protocol.HEADER.pack(len(data)) + data)
        fd = self.child.to_child
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            events = poller.poll(min(remaining, 1.0) * 1000)
            if not events:
                continue
            if events[0][1] & (select.POLLERR | select.POLLHUP | select.POLLNVAL) and \
                    not events[0][1] & select.POLLOUT:
                return "closed"
            try:
                written = os.write(fd, view[:WRITE_CHUNK])
            except BlockingIOError:
                continue
            except OSError:
                return "closed"
            view = view[written:]
        return "ok"

    def _recv(self, deadline: float) -> dict | None:
        """The next message; None when the child is still running past ``deadline`` (hung);
        ``{"type": "eof"}`` when it died or closed its end; ``{"type": "protocol_error"}`` for a bad frame."""
        try:
            message = self.child.reader.read(deadline)
        except (EOFError, OSError):
            return {"type": "eof"}
        except protocol.ProtocolError:
            return {"type": "protocol_error"}
        if message is None and self.child.proc.poll() is not None:
            return {"type": "eof"}
        return message

    def _new_oom_kills(self) -> int:
        """OOM kills in the child's cgroup not yet blamed on anything (and now blamed)."""
        group = self.child.cgroup if self.child else None
        if group is None:
            return 0
        count = group.oom_kills()
        new, self.child.oom_seen = count - self.child.oom_seen, count
        return max(0, new)

    def _memory_message(self) -> str:
        gib = _cgroup_limits(self.limits)["sandbox_memory_bytes"] / 2**30
        return (f"the sandbox's memory limit ({gib:g} GiB for all its processes together, files in /tmp "
                f"included) was reached and the kernel stopped a process (out of memory)")

    # -- the notebook ------------------------------------------------------------------------------------------
    def run_notebook(self) -> list[CellRecord]:
        """Run every cell (in a fresh child, again without a cell that killed or hung the last one)."""
        while True:
            self._kill()
            try:
                self.child = self._spawn()
            except _BudgetSpent:
                self.defined = []
                return self.cell_records()
            run = self._run_cells()
            if run.outcome == "ready" or not self._blame(run):
                return self.cell_records()

    def _run_cells(self) -> "_Run":
        """Send the set-up message and read the child's cell records until it says ``ready`` (its graded names
        are then in ``self.defined``), dies, hangs past a deadline or breaks the protocol."""
        setup = {"cells": self.cells, "skip": sorted(self.skip), "seed": self.seed,
                 "threads": self.threads, "kinds": self.kinds, "probes": self.probes,
                 "cell_timeout_s": self.limits["cell_timeout_s"],
                 "notebook_timeout_s": self.limits["notebook_timeout_s"],
                 "output_bytes": self.limits["output_bytes"]}
        now = time.monotonic()
        run = _Run(started=now, current_start=now)
        # fixed now, from our own clock: nothing the child sends moves these
        notebook_deadline = min(run.started + self.limits["notebook_timeout_s"] + 30, self.budget_deadline)
        cell_limit = self.limits["cell_timeout_s"] + 5
        deadline = notebook_deadline
        if self._send(setup, notebook_deadline) != "ok":
            run.outcome = "eof"
            return run
        while True:
            message = self._recv(deadline)
            if message is None:
                run.outcome = "timeout"
                return run
            kind = message.get("type")
            if kind in ("eof", "protocol_error"):
                run.outcome = kind
                return run
            if kind == "cell_start":
                index = _as_index(message.get("index"), len(self.cells))
                if index is None or run.current is not None or index <= run.last_started or index in self.skip:
                    continue  # forged or out of order: blames nothing, moves nothing
                run.last_started, run.current, run.current_start = index, index, time.monotonic()
                deadline = min(run.current_start + cell_limit, notebook_deadline)
            elif kind == "cell":
                index = _as_index(message.get("index"), len(self.cells))
                if index is None or index != run.current:
                    continue  # only the running cell's record counts, once
                record = _cell_record(index, message, time.monotonic() - run.current_start)
                if self._new_oom_kills():
                    record = self._memory_record(index, record.duration_s)
                self.records[index] = record
                run.current = None
                deadline = min(time.monotonic() + GAP_S, notebook_deadline)
            elif kind == "ready":
                defined = message.get("defined")
                self.defined = [n for n in defined if n in self.graded_names] if isinstance(defined, list) else []
                run.outcome = "ready"
                return run

    def _blame(self, run: "_Run") -> bool:
        """After a run that did not reach ``ready`` (the child died, hung or broke the protocol): record the
        running cell, or the last one that started (its record may have been forged), as timed out or crashed
        and skip it from now on. True when the notebook is worth running again in a fresh child. Raises
        SandboxUnavailable when no cell had started (the grader's side failed, not the student's code)."""
        blamed = run.current if run.current is not None else (run.last_started if run.last_started >= 0 else None)
        budget_out = run.outcome == "timeout" and self.budget_left() <= 0
        self.defined = []
        if blamed is None:  # before any cell started: nothing of the student's ran, so not the student's doing
            self._kill()
            if budget_out:
                return False
            raise SandboxUnavailable(f"the sandbox's Python process ended ({run.outcome}) before the notebook's "
                                     "first cell: nothing of the student's ran (the harness or the assignment's "
                                     "probes.py failed)")
        seconds = round(time.monotonic() - run.current_start, 3)
        if budget_out:
            self.records[blamed] = CellRecord(blamed, "timeout", seconds, {
                "ename": "Timeout", "evalue": f"stopped: the submission's time budget ({self.budget_s:.0f} s) "
                                              "ran out", "traceback": ""})
        elif run.outcome != "timeout" and self._new_oom_kills():
            self.records[blamed] = self._memory_record(blamed, seconds)
        else:
            timed_out = run.outcome == "timeout"
            self.records[blamed] = CellRecord(
                blamed, "timeout" if timed_out else "crashed", seconds,
                {"ename": "Timeout" if timed_out else "Crashed",
                 "evalue": "the cell ran past its time limit and was stopped" if timed_out else
                 "the Python process running the notebook died in this cell (os._exit, a crash, or the "
                 "memory limit)", "traceback": ""})
        self._kill()
        self.skip.add(blamed)
        # cells that already timed out or crashed are not worth their time again in the fresh child
        self.skip.update(i for i, r in self.records.items() if r.status in ("timeout", "crashed"))
        self.restarts += 1
        return not (budget_out or self.restarts > self.limits["restarts"] or self.budget_left() <= 0)

    def _memory_record(self, index: int, seconds: float) -> CellRecord:
        return CellRecord(index, "crashed", seconds, {"ename": "MemoryLimit", "evalue": self._memory_message(),
                                                      "traceback": ""})

    def cell_records(self) -> list[CellRecord]:
        out = []
        for i in range(len(self.cells)):
            out.append(self.records.get(i) or CellRecord(i, "skipped", 0.0, None, ""))
        return out

    def _ensure_child(self) -> bool:
        if self.child is not None and self.child.proc.poll() is None:
            return True
        if self.restarts >= self.limits["restarts"] + 2 or self.budget_left() <= 0:
            return False
        self.restarts += 1
        saved = dict(self.records)
        self.run_notebook()
        self.records = saved
        return self.child is not None

    # -- calls ------------------------------------------------------------------------------------------------
    def call(self, name: str, args: list, *, oracles: dict | None = None, repeat: int = 1,
             timeout: float | None = None) -> CallResult:
        """Call the student's ``name(*args)`` in the child. ``oracles`` maps names to trusted functions
        that stand in for the student's own while the call runs (the child sees only their answers)."""
        request = {"type": "call", "name": name, "args": [protocol.encode(a) for a in args],
                   "oracles": {n: list(getattr(fn, "params", ())) for n, fn in sorted((oracles or {}).items())},
                   "repeat": repeat}
        return self._request(request, oracles or {}, timeout)

    def probe(self, probe: str, timeout: float | None = None, **payload) -> CallResult:
        request = {"type": "probe", "probe": probe, "payload": protocol.encode(payload)}
        return self._request(request, {}, timeout)

    def _request(self, request: dict, oracles: dict, timeout: float | None) -> CallResult:
        timeout = float(timeout or self.limits["call_timeout_s"])
        if self.budget_left() <= 0:
            self._kill()
            return CallResult(False, status="timeout", message=self._budget_message())
        if not self._ensure_child():
            if self.budget_left() <= 0:
                return CallResult(False, status="timeout", message=self._budget_message())
            return CallResult(False, status="crashed", message="not run: the notebook's process was restarted "
                                                               f"{self.restarts} times already")
        request["id"] = secrets.token_hex(8)
        request["timeout"] = timeout
        sent_at = time.monotonic()
        deadline = min(sent_at + timeout + 5, self.budget_deadline)

        sent = self._send(request, deadline)
        if sent != "ok":
            return self._hung(sent_at, timeout) if sent == "timeout" else self._died()
        while True:
            message = self._recv(deadline)
            if message is None:
                return self._hung(sent_at, timeout)
            if message.get("type") == "eof":
                return self._died()
            if message.get("type") == "protocol_error":
                self._kill()
                return CallResult(False, status="protocol", message="the sandbox sent a malformed message")
            if message.get("type") == "cell":  # late cell records (a forged early "ready"): keep new ones
                index = _as_index(message.get("index"), len(self.cells))
                if index is not None and index not in self.records:
                    self.records[index] = _cell_record(index, message)
                continue
            if message.get("id") != request["id"] or message.get("type") not in ("oracle", "result"):
                continue  # stale or forged: only the answer to this request's nonce counts
            if message.get("type") == "oracle":
                sent = self._answer_oracle(message, oracles, deadline)
                if sent != "ok":  # it asked and stopped reading (or died): the call is over
                    return self._hung(sent_at, timeout) if sent == "timeout" else self._died()
                continue
            # the time is measured here: the child's word is not taken
            return _call_result(message, timeout, round(time.monotonic() - sent_at, 4))

    def _hung(self, sent_at: float, timeout: float) -> CallResult:
        """A call that did not answer before its deadline: the child is killed."""
        self._kill()
        if self.budget_left() <= 0:
            return CallResult(False, status="timeout", seconds=round(time.monotonic() - sent_at, 4),
                              message=f"did not finish: the submission's time budget ({self.budget_s:.0f} s) "
                                      "ran out")
        return CallResult(False, status="timeout", seconds=timeout, message=f"did not finish within {timeout:.0f} s")

    def _died(self) -> CallResult:
        """A call during which the child's process ended (its own doing, or the memory limit)."""
        memory = self._new_oom_kills()
        self._kill()
        if memory:
            return CallResult(False, status="crashed", message=f"the Python process died during the call: "
                                                               f"{self._memory_message()}")
        return CallResult(False, status="crashed", message="the Python process died during the call")

    def _answer_oracle(self, message: dict, oracles: dict, deadline: float) -> str:
        name = message.get("name")
        reply: dict = {"type": "oracle_result"}
        fn = oracles.get(name) if isinstance(name, str) else None
        if fn is None:
            reply.update(ok=False, error=f"{name} is not available here")
        else:
            try:
                args = [protocol.decode(a) for a in message.get("args", [])]
                value, rng_state = fn(*args)
                reply.update(ok=True, value=protocol.encode(value))
                if rng_state is not None:
                    reply["rng_state"] = rng_state
            except Exception as exc:  # a bad argument from the student's code: the call fails, we do not
                reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        return self._send(reply, deadline)


@dataclass
class _Run:
    """One run of the notebook's cells in one child, as ``_run_cells`` saw it."""
    started: float
    outcome: str = ""              # ready | eof | protocol_error | timeout
    current: int | None = None     # the cell running now (started, no record yet)
    current_start: float = 0.0    # when the running (or the last started) cell started
    last_started: int = -1


class _BudgetSpent(Exception):
    """The submission's time budget ended before a child could be started."""


def _call_result(message: dict, timeout: float, seconds: float) -> CallResult:
    """A call's ``result`` message (its nonce already matched) as a CallResult: the value decoded as plain
    data, or the error, cut to size; ``seconds`` is the parent's own measurement."""
    if message.get("ok") is True:
        try:
            value = protocol.decode(message.get("value"))
        except (protocol.ProtocolError, ValueError, TypeError) as exc:
            return CallResult(False, status="protocol", message=f"unreadable return value ({exc})")
        return CallResult(True, value, seconds=seconds)
    error = message.get("error") if isinstance(message.get("error"), dict) else {}
    if message.get("timeout") is True:
        return CallResult(False, status="timeout", seconds=seconds, message=f"did not finish within {timeout:.0f} s")
    ename, evalue = str(error.get("ename", "Error"))[:200], str(error.get("evalue", ""))[:1000]
    status = "undefined" if ename == "NameError" and "is not defined in the notebook" in evalue else "error"
    return CallResult(False, status=status, message=f"{ename}: {evalue}",
                      traceback=str(error.get("traceback", ""))[-4000:], seconds=seconds)


def _as_index(value, n):
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n else None


def _as_float(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _cell_record(index: int, message: dict, seconds: float | None = None) -> CellRecord:
    """A cell's record from the child's message; its duration as measured here when known."""
    status = message.get("status") if message.get("status") in ("ok", "error", "timeout", "skipped") else "error"
    error = message.get("error")
    if isinstance(error, dict):
        error = {k: str(error.get(k, ""))[:8000] for k in ("ename", "evalue", "traceback")}
    else:
        error = None
    output = message.get("output")
    duration = round(seconds, 4) if seconds is not None else min(_as_float(message.get("duration_s")), 1e6)
    return CellRecord(index, status, duration, error,
                      output[:65536] if isinstance(output, str) else "")
