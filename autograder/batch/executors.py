"""Where ``batch`` grades: one interface, two backends.

An executor takes the notebooks to grade (``{sha256: path}``) and yields ``(sha256, result)`` as each one
finishes; the batch process records every result itself (it stays the only writer of the gradebook).

- ``LocalPool`` (the default): a process pool on this machine, one worker per core. No grading process
  outlives the batch: each worker asks the kernel for SIGTERM when the batch dies
  (``prctl(PR_SET_PDEATHSIG)``), also watches its parent pid, and then kills its whole process subtree (the
  sandbox children) before it exits (``autograder.batch.processes``). A worker that dies takes the pool down: the pool is restarted for the
  notebooks still pending, each at most ``MAX_POOL_RESTARTS`` times.
- ``DaskCluster`` (``batch --scheduler tcp://HOST:8786``): each notebook travels to a ``dask.distributed``
  worker as bytes (workers share no file system with the batch) with the batch's grader_version; the worker
  grades it in its own sandbox and returns the result dict. Workers are started with the preload
  ``autograder.batch.dask_worker`` (it checks the sandbox, MNIST and the grader_version before the worker joins).
  A worker that dies mid-task: the scheduler gives the task to another worker; a notebook that has killed
  ``distributed.scheduler.allowed-failures`` + 1 workers (default 4) ends ``crashed`` with a message. A
  worker whose grader_version differs from the batch's refuses the task and leaves the cluster; the task is
  given to another worker; a cluster left without any worker for ``--worker-wait`` seconds stops the batch
  (finished results are kept). Ctrl-C cancels every outstanding task; a worker whose running task is cancelled
  kills that task's sandbox.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

from autograder.batch.processes import init_worker, kill_tree, kill_tree_of_pool
from autograder.record import gradebook

MAX_POOL_RESTARTS = 3
# scheduler metadata key: the grader_version of the batch that last used the cluster (workers check it)
META_GRADER_VERSION = "autograder-grader-version"
# and a fingerprint of its course secret (an HMAC, not the secret): a worker with another secret would give
# every student other hidden inputs
META_SECRET = "autograder-secret-fingerprint"
# attempts of one notebook on workers that refused it for their grader_version, before giving up on it
MAX_REFUSALS = 3


class ExecutorError(RuntimeError):
    """The executor cannot grade at all (no scheduler, no worker): the batch stops with this message."""


class GraderVersionMismatch(RuntimeError):
    """Raised on a Dask worker whose grader_version is not the batch's (the worker then leaves)."""


def _grade_one(path: str) -> dict:
    """Runs in a worker: one notebook through the sandboxed grader; never raises for a bad notebook."""
    from autograder.grade import grade_notebook
    result = grade_notebook(Path(path))
    json.dumps(result)                 # fail here, in the worker, if the result is not plain data
    return result


def failed_result(message: str, duration_s: float = 0.0, status: str = "sandbox_error") -> dict:
    """The result recorded when the grading machinery itself failed (``sandbox_error``: retried by the next
    batch), or, with ``status="crashed"``, when the notebook itself kept killing its workers."""
    return {"status": status, "message": message, "total": 0.0,
            "max_total": gradebook.max_total(), "questions": {}, "cells": [], "measurements": {},
            "duration_s": duration_s}


def _worker_error(exc: BaseException) -> dict:
    return failed_result(f"worker error: {type(exc).__name__}: {exc}\n"
                         + "".join(traceback.format_exception(exc))[-2000:])


# --- the local process pool ---------------------------------------------------------------------------

class LocalPool:
    """Grade in a pool of ``workers`` processes on this machine (restarted when a worker dies)."""

    name = "local"

    def __init__(self, workers: int, err):
        self.workers = workers
        self.err = err

    def grade(self, todo: dict[str, Path]) -> Iterator[tuple[str, dict]]:
        attempts: Counter[str] = Counter()
        pending = dict(todo)
        while pending:
            ctx = multiprocessing.get_context("spawn")
            pool = cf.ProcessPoolExecutor(max_workers=max(1, min(self.workers, len(pending))), mp_context=ctx,
                                          initializer=init_worker, initargs=(os.getpid(),))
            broken: dict[str, Path] = {}
            try:
                futures = {pool.submit(_grade_one, str(path)): (sha, path) for sha, path in pending.items()}
                for fut in cf.as_completed(futures):
                    sha, path = futures[fut]
                    try:
                        result = fut.result()
                    except cf.process.BrokenProcessPool:
                        attempts[sha] += 1
                        if attempts[sha] <= MAX_POOL_RESTARTS:
                            broken[sha] = path   # a worker died (OOM, killed): not necessarily this notebook
                            continue
                        result = failed_result("a grading worker died while this notebook was being graded")
                    except Exception as exc:  # noqa: BLE001  (a worker exception becomes a recorded result)
                        result = _worker_error(exc)
                    pending.pop(sha, None)
                    yield sha, result
            finally:
                kill_tree_of_pool(pool)
            if broken:
                self.err.print(f"warning: a grading worker died; restarting the pool for {len(broken)} notebooks")


# --- the Dask cluster -----------------------------------------------------------------------------------

def gpu_count() -> int:
    """NVIDIA GPUs on this machine (their /dev/nvidiaN nodes); 0 without a GPU."""
    return sum(1 for p in Path("/dev").glob("nvidia*") if p.name[len("nvidia"):].isdigit())


def gpu_slots() -> int:
    """GPU resource units this machine offers: GPUs x ``LIMITS["sandboxes_per_gpu"]`` (0 without a GPU); what
    a Dask worker machine advertises with ``--resources GPU=k``."""
    n = gpu_count()
    if not n:
        return 0
    from autograder.config import grader_config
    return n * max(1, int(grader_config.LIMITS.get("sandboxes_per_gpu", 1)))


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "submission.ipynb"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:100] or "submission.ipynb"


def secret_fingerprint() -> str:
    """Identifies the course secret without revealing it (compared between the batch and its workers)."""
    from autograder import secret
    return hmac.new(secret.course_secret(), b"autograder worker check", hashlib.sha256).hexdigest()[:16]


def grade_bytes(name: str, data: bytes, expected_version: str, expected_secret: str | None = None) -> dict:
    """A Dask task: grade one notebook given as bytes, on a worker whose grader_version (and course secret)
    are the batch's."""
    from autograder.grade import grade_notebook, grader_version
    mine = grader_version()
    if expected_secret is not None and secret_fingerprint() != expected_secret:
        mine = f"{mine} with another course secret (AUTOGRADER_SECRET / .grader_secret)"
    if mine != expected_version:
        where = "this worker"
        with contextlib.suppress(Exception):
            from distributed import get_worker
            worker = get_worker()
            where = f"worker {worker.address}"
            worker.loop.add_callback(worker.close, nanny=True, reason="autograder-grader-version-mismatch")
        raise GraderVersionMismatch(
            f"{where} grades with grader_version {mine}, the batch expects {expected_version}; it leaves the "
            "cluster (start workers from the same checkout, grader_config.py and AUTOGRADER_MNIST_PROFILE "
            "as the batch)")
    with tempfile.TemporaryDirectory(prefix=f"autograder-task-{os.getpid()}-") as folder:
        path = Path(folder) / _safe_name(name)
        path.write_bytes(data)
        with _killed_when_cancelled():
            result = grade_notebook(path)
    json.dumps(result)
    return result


@contextlib.contextmanager
def _killed_when_cancelled():
    """On a Dask worker: while the task runs, a thread kills this worker's sandbox children as soon as the
    scheduler cancels the task (Ctrl-C in the batch), so that the grading stops within a second or two."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state
        worker, key = get_worker(), thread_state.key
    except Exception:  # noqa: BLE001  (not on a worker: nothing to watch)
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.3):
            ts = worker.state.tasks.get(key)
            if ts is None or ts.state in ("cancelled", "released", "forgotten"):
                kill_tree(os.getpid())   # the preload makes sure a worker runs one task at a time

    thread = threading.Thread(target=watch, name="autograder-cancel-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


class DaskCluster:
    """Grade on a ``dask.distributed`` cluster whose workers run the preload ``autograder.batch.dask_worker``."""

    name = "dask"

    def __init__(self, address: str, version: str, err, *, gpu: bool = False, connect_timeout: float = 30,
                 worker_wait: float = 120):
        self.address = address
        self.version = version
        self.err = err
        self.gpu = gpu
        self.connect_timeout = connect_timeout
        self.worker_wait = worker_wait

    def grade(self, todo: dict[str, Path]) -> Iterator[tuple[str, dict]]:
        from distributed import Client, KilledWorker, wait

        try:
            client = Client(self.address, timeout=self.connect_timeout)   # the default: distributed.wait uses it
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        futures: dict = {}
        try:
            # workers that join later refuse to start with another grader_version (autograder.batch.dask_worker)
            fingerprint = secret_fingerprint()
            client.set_metadata(META_GRADER_VERSION, self.version)
            client.set_metadata(META_SECRET, fingerprint)
            try:
                client.wait_for_workers(1, timeout=self.worker_wait)
            except (TimeoutError, OSError):
                raise ExecutorError(f"no Dask worker joined {self.address} within {self.worker_wait:.0f} s; "
                                    "start workers with: dask worker " + self.address
                                    + " --nthreads 1 --preload autograder.batch.dask_worker") from None
            resources = {"GPU": 1} if self.gpu else None
            refusals: Counter[str] = Counter()
            token = uuid.uuid4().hex[:8]

            def submit(sha: str, path: Path):
                fut = client.submit(grade_bytes, path.name, path.read_bytes(), self.version, fingerprint,
                                    key=f"autograder-{sha[:16]}-{token}-{refusals[sha]}", pure=False,
                                    resources=resources, retries=0)
                futures[fut] = (sha, path)
                return fut

            for sha, path in todo.items():
                submit(sha, path)
            alone_since = None            # since when the cluster has had no worker at all
            while futures:
                try:
                    finished, _ = wait(list(futures), timeout=10, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    if client.scheduler_info(n_workers=-1).get("workers"):
                        alone_since = None
                    elif alone_since is None:
                        alone_since = time.monotonic()
                    elif time.monotonic() - alone_since > self.worker_wait:
                        raise ExecutorError(f"no Dask worker left on {self.address} for {self.worker_wait:.0f} s "
                                            f"with {len(futures)} notebooks to grade; finished results are "
                                            "saved, start workers and run the same command again") from None
                    continue
                for fut in finished:
                    sha, path = futures.pop(fut)
                    try:
                        result = fut.result()
                    except KilledWorker as exc:
                        result = failed_result(
                            "crashed: grading this notebook killed the Dask worker every time it was tried "
                            f"({exc}); it most likely uses more memory than a worker has or ends its process. "
                            "A TA should look at it", status="crashed")
                    except GraderVersionMismatch as exc:
                        refusals[sha] += 1
                        self.err.print(f"warning: {exc}", soft_wrap=True, markup=False)
                        if refusals[sha] < MAX_REFUSALS:
                            submit(sha, path)
                            continue
                        result = failed_result(f"no Dask worker with grader_version {self.version} took this "
                                               f"notebook ({exc})")
                    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001  (recorded, retried)
                        result = _worker_error(exc)
                    yield sha, result
        finally:
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)
            with contextlib.suppress(Exception):
                client.close(timeout=10)
