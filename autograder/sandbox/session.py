"""The parent side of the sandbox: start the jailed child, run the notebook, make calls, survive faults.

A ``Session`` owns one child at a time. If the child dies or hangs while running cell k, the cell is
recorded as crashed/timed out and a fresh child runs the notebook again without cell k (so one bad cell
never costs the cells after it). If it dies or hangs during a call, that call fails and the next call
starts a fresh child. Nothing the child sends is trusted: messages are size-capped JSON, decoded into
plain numbers, strings, lists and numeric arrays (``protocol.decode``) and validated by the caller.
"""
from __future__ import annotations

import json
import os
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

from .child import protocol

HERE = Path(__file__).resolve().parent
HOME = "/home/student"
UID_BASE = 200_000
SANDBOX_SETUP_FAILED = 121


class SandboxUnavailable(RuntimeError):
    """The sandbox could not be set up on this machine (no namespaces, say). No student code ran."""


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


def _grader_dir() -> Path:
    """A private copy of what the child may see of the grader: the harness, the protocol, stubs."""
    return HERE / "child"  # harness.py, protocol.py, stubs/: nothing secret


def sandbox_description(limits: dict) -> dict:
    return {
        "isolation": "namespaces: mount (pivot_root into a minimal read-only view), network (no interfaces), "
                     "pid, ipc, uts" + ("" if os.geteuid() == 0 else ", user"),
        "uid": "a uid of its own per sandbox" if os.geteuid() == 0 else "unprivileged uid via user namespace",
        "network": False,
        "visible": ["the OS and Python installation (read-only)", "the submission", "co2.csv",
                    "MNIST train set and the visible half of the test set (read-only)"],
        "limits": {k: limits[k] for k in ("memory_bytes", "cpu_seconds", "file_bytes", "processes",
                                          "open_files", "cell_timeout_s", "call_timeout_s")},
    }


class Session:
    def __init__(self, cells: list[str], graded_names: list[str], *, files: dict[str, Path],
                 data_dir: Path | None, limits: dict, seed: int, threads: int):
        self.cells = cells
        self.graded_names = graded_names
        self.files = files
        self.data_dir = data_dir
        self.limits = limits
        self.seed = seed
        self.threads = threads
        self.skip: set[int] = set()
        self.records: dict[int, CellRecord] = {}
        self.defined: list[str] = []
        self.restarts = 0
        self.child: _Child | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="autograder-"))
        os.chmod(self.workdir, 0o700)

    # -- life cycle ------------------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

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

    def _spawn(self) -> _Child:
        parent_in, child_out = os.pipe()
        child_in, parent_out = os.pipe()
        staging = self.workdir / f"root{self.restarts}"
        staging.mkdir()
        python = Path(sys.executable)
        prefixes = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
        config = {
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
            "limits": self.limits,
            "fd_in": child_in,
            "fd_out": child_out,
            "argv": [str(python), "-I", "-X", "utf8", "/grader/harness.py"],
            "env": {
                "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "USER": "student",
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": "/tmp/matplotlib", "OMP_NUM_THREADS": str(self.threads),
                "MKL_NUM_THREADS": str(self.threads), "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
                "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
            },
        }
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(HERE / "jail.py"), json.dumps(config)],
            pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            env={"PATH": "/usr/bin:/bin"},  # nothing of the grader's environment (tokens, secrets) goes in
        )
        os.close(child_in)
        os.close(child_out)
        child = _Child(proc, parent_out, parent_in, reader=protocol.FrameReader(parent_in, self.limits["message_bytes"]))
        threading.Thread(target=self._drain, args=(proc.stdout, child.output), daemon=True).start()
        return child

    def _drain(self, stream, sink: list):
        kept = 0
        for chunk in iter(lambda: stream.read1(65536), b""):
            if kept < self.limits["output_bytes"]:
                sink.append(chunk[: self.limits["output_bytes"] - kept])
                kept += len(sink[-1])

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

    def _setup_failure(self) -> str | None:
        self.child.proc.wait(timeout=5)
        text = b"".join(self.child.output).decode("utf-8", "replace")
        if self.child.proc.returncode == SANDBOX_SETUP_FAILED and "SANDBOX-SETUP-FAILED" in text:
            return text.strip().splitlines()[-1]
        return None

    # -- the notebook ------------------------------------------------------------------------------------------
    def run_notebook(self) -> list[CellRecord]:
        """Run every cell (in a fresh child, again without a cell that killed or hung the last one)."""
        while True:
            self._kill()
            self.child = self._spawn()
            setup = {"cells": self.cells, "skip": sorted(self.skip), "seed": self.seed,
                     "threads": self.threads, "graded_names": self.graded_names,
                     "cell_timeout_s": self.limits["cell_timeout_s"],
                     "notebook_timeout_s": self.limits["notebook_timeout_s"],
                     "output_bytes": self.limits["output_bytes"]}
            try:
                protocol.send(self.child.to_child, setup)
            except OSError:
                pass
            started = time.monotonic()
            current, current_start = None, started
            notebook_deadline = started + self.limits["notebook_timeout_s"] + 30
            while True:
                cell_deadline = (current_start + self.limits["cell_timeout_s"] + 5) if current is not None \
                    else notebook_deadline
                message = self._recv(min(cell_deadline, notebook_deadline))
                if message is None or message.get("type") in ("eof", "protocol_error"):
                    timed_out = message is None
                    break
                kind = message.get("type")
                if kind == "cell_start":
                    current, current_start = _as_index(message.get("index"), len(self.cells)), time.monotonic()
                elif kind == "cell":
                    index = _as_index(message.get("index"), len(self.cells))
                    if index is not None:
                        self.records[index] = _cell_record(index, message, time.monotonic() - current_start)
                    current = None
                elif kind == "ready":
                    defined = message.get("defined")
                    self.defined = [n for n in defined if n in self.graded_names] if isinstance(defined, list) else []
                    return self.cell_records()
            # the child died, hung or broke the protocol
            if self.restarts == 0 and current is None and not self.records:
                failure = self._setup_failure()
                if failure:
                    self._kill()
                    raise SandboxUnavailable(failure)
            if current is None:  # died between cells (or before the first): nothing to skip
                self._kill()
                self.defined = []
                return self.cell_records()
            self.records[current] = CellRecord(
                current, "timeout" if timed_out else "crashed", round(time.monotonic() - current_start, 3),
                {"ename": "Timeout" if timed_out else "Crashed",
                 "evalue": "the cell ran past its time limit and was stopped" if timed_out else
                 "the Python process running the notebook died in this cell (os._exit, a crash, or the "
                 "memory limit)", "traceback": ""})
            self.skip.add(current)
            # cells that already timed out are not worth their time limit again in the fresh child
            self.skip.update(i for i, r in self.records.items() if r.status == "timeout")
            self.restarts += 1
            if self.restarts > self.limits["restarts"]:
                self._kill()
                self.defined = []
                return self.cell_records()

    def cell_records(self) -> list[CellRecord]:
        out = []
        for i in range(len(self.cells)):
            out.append(self.records.get(i) or CellRecord(i, "skipped", 0.0, None, ""))
        return out

    def _ensure_child(self) -> bool:
        if self.child is not None and self.child.proc.poll() is None:
            return True
        if self.restarts >= self.limits["restarts"] + 2:
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
        if not self._ensure_child():
            return CallResult(False, status="crashed", message="the notebook could not be run")
        request["id"] = secrets.token_hex(8)
        request["timeout"] = timeout
        try:
            protocol.send(self.child.to_child, request)
        except OSError:
            self._kill()
            return CallResult(False, status="crashed", message="the notebook's process had died")
        sent_at = time.monotonic()
        deadline = sent_at + timeout + 5
        while True:
            message = self._recv(deadline)
            if message is None or message.get("type") == "eof":
                hung = message is None
                self._kill()
                if hung:
                    return CallResult(False, status="timeout", seconds=timeout,
                                      message=f"did not finish within {timeout:.0f} s")
                return CallResult(False, status="crashed", message="the Python process died during the call")
            if message.get("type") == "protocol_error":
                self._kill()
                return CallResult(False, status="protocol", message="the sandbox sent a malformed message")
            if message.get("type") == "cell":  # late cell records (a forged early "ready"): keep them
                index = _as_index(message.get("index"), len(self.cells))
                if index is not None:
                    self.records[index] = _cell_record(index, message)
                continue
            if message.get("id") != request["id"] or message.get("type") not in ("oracle", "result"):
                continue  # stale or forged: only the answer to this request's nonce counts
            if message.get("type") == "oracle":
                self._answer_oracle(message, oracles)
                continue
            seconds = round(time.monotonic() - sent_at, 4)  # measured here: the child's word is not taken
            if message.get("ok") is True:
                try:
                    value = protocol.decode(message.get("value"))
                except (protocol.ProtocolError, ValueError, TypeError) as exc:
                    return CallResult(False, status="protocol", message=f"unreadable return value ({exc})")
                return CallResult(True, value, seconds=seconds)
            error = message.get("error") if isinstance(message.get("error"), dict) else {}
            if message.get("timeout") is True:
                return CallResult(False, status="timeout", seconds=seconds,
                                  message=f"did not finish within {timeout:.0f} s")
            ename, evalue = str(error.get("ename", "Error"))[:200], str(error.get("evalue", ""))[:1000]
            status = "undefined" if ename == "NameError" and "is not defined in the notebook" in evalue else "error"
            return CallResult(False, status=status, message=f"{ename}: {evalue}",
                              traceback=str(error.get("traceback", ""))[-4000:], seconds=seconds)

    def _answer_oracle(self, message: dict, oracles: dict):
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
        try:
            protocol.send(self.child.to_child, reply)
        except OSError:
            pass


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
