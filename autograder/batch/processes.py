"""Process-tree hygiene, the one-batch-per-gradebook lock and stale work folders (Linux, from /proc).

What keeps a batch from leaving processes or files behind, whichever way it ends:

- ``descendants`` / ``kill_tree``: every process below a pid, read from /proc, and SIGKILLed after being
  frozen with SIGSTOP (so that none forks away);
- ``init_worker``: the initializer of a local pool worker. The worker asks the kernel for SIGTERM when the
  batch dies (``prctl(PR_SET_PDEATHSIG)``), also watches its parent pid, and then kills its whole process
  subtree (the sandbox children) before it exits; ``kill_tree_of_pool`` ends a pool and its subtrees;
- ``lock``: an exclusive ``flock`` on the gradebook file, held for the whole batch or ``upload --apply`` (the
  kernel drops it when the process dies, ``kill -9`` included);
- ``remove_stale_workdirs``: the temporary folders (``autograder-batch-<pid>-...``, ``autograder-sandbox-``,
  ``autograder-task-``) of grading processes that are gone. A folder's process is looked up by pid in this
  pid namespace: grading processes in other containers must not share this machine's /tmp.
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import fcntl
import os
import shutil
import signal
import tempfile
import threading
import time

PR_SET_PDEATHSIG = 1
WORKDIR_PREFIX = "autograder-batch-"
# every temporary folder of a grading process is named <prefix><pid>-...: a batch's extracted notebooks, a
# sandbox's work folder (autograder.execute.session), a Dask task's notebook (autograder.batch.executors)
STALE_PREFIXES = (WORKDIR_PREFIX, "autograder-sandbox-", "autograder-task-")


class Locked(RuntimeError):
    """Another batch holds the lock on this gradebook."""


# --- process trees ------------------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    kids = _children_map()
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL every process below ``pid``; freezes them first (SIGSTOP) so that none forks away."""
    stopped: set[int] = set()
    for _ in range(50):
        fresh = descendants(pid) - stopped
        if not fresh:
            break
        for p in fresh:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
        stopped |= fresh
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- pool workers that die with the batch -------------------------------------------------------------

def _die_with_children(*_args) -> None:
    kill_tree(os.getpid())
    os._exit(1)


def init_worker(batch_pid: int) -> None:
    """Pool initializer: die, with every sandbox child, as soon as the batch process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the batch's to handle
    signal.signal(signal.SIGTERM, _die_with_children)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watcher thread below still works
        pass
    if os.getppid() != batch_pid:      # the batch died before prctl took effect
        _die_with_children()

    def watch() -> None:               # also covers a SIGTERM handler that was replaced or cannot run
        while True:
            time.sleep(0.5)
            if os.getppid() != batch_pid:
                _die_with_children()

    threading.Thread(target=watch, name="batch-watch", daemon=True).start()


def kill_tree_of_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Shut ``pool`` down now: cancel what has not started, kill every worker and its subtree."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.pid is not None and p.is_alive():
            kill_tree(p.pid)
            try:
                p.kill()
            except Exception:  # noqa: BLE001  (already gone)
                pass
    for p in procs:
        p.join(timeout=5)


# --- one batch per gradebook, and what a killed batch left behind ---------------------------------------

def lock(db) -> int:
    """An exclusive flock on the gradebook file for a batch or an ``upload --apply`` (released by the kernel
    if it dies); the descriptor, to ``os.close`` when it ends. Raises ``Locked`` when another holds it.

    flock and SQLite's own POSIX locks do not interact; the descriptor stays open until the connection is
    closed, so closing it cannot drop SQLite's locks."""
    fd = os.open(db, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Locked(f"another batch or upload --apply is running on {db}; wait for it (or stop it) first") from None
    return fd


def remove_stale_workdirs(tmp: str | None = None) -> list[str]:
    """Remove the temporary folders (extracted notebooks, sandbox work folders, Dask tasks' notebooks) of
    grading processes that are gone (``kill -9``); a folder is named ``<prefix><pid>-...``."""
    tmp = tmp or tempfile.gettempdir()
    removed = []
    try:
        entries = os.listdir(tmp)
    except OSError:
        return removed
    for entry in entries:
        prefix = next((p for p in STALE_PREFIXES if entry.startswith(p)), None)
        if prefix is None:
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        path = os.path.join(tmp, entry)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def new_workdir() -> str:
    """A fresh temporary folder for this batch, named so that ``remove_stale_workdirs`` of a later batch can
    tell whether its batch is still alive."""
    return tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
