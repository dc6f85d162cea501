"""Dask worker preload: a worker joins a grading cluster only when it can grade like the batch.

Start workers from a checkout of this project (same commit, ``grader_config.py``, course secret and
``AUTOGRADER_MNIST_PROFILE`` as the batch), after ``make setup`` (it installs the project into .venv/)::

    .venv/bin/dask worker tcp://HOST:8786 --nworkers N --nthreads 1 \\
        --preload autograder.batch.dask_worker [--resources GPU=k]

On start-up, before the worker registers with the scheduler, ``dask_setup`` checks that

- the worker runs one task at a time (``--nthreads 1``: one sandbox per worker process, a cancelled task's
  sandbox can be killed without touching another's);
- the assignment's MNIST files, if it uses MNIST, verify (sha256) and the profile's sandbox folder can be
  built (and the temporary folders of grading processes killed on this machine are removed);
- the sandbox works: a one-cell notebook runs in a real sandbox child;
- its grader_version and course secret (an HMAC fingerprint) are the ones the scheduler expects (set by
  the last batch, if any).

and raises otherwise: the worker does not join, and says why. Each task also carries the batch's
grader_version and a worker with another one refuses it and leaves (``autograder.batch.executors.grade_bytes``).
"""
from __future__ import annotations

import logging
import time

from autograder.batch.executors import META_GRADER_VERSION, META_SECRET, gpu_count, gpu_slots, secret_fingerprint
from autograder.batch.processes import remove_stale_workdirs

logger = logging.getLogger("autograder.batch.dask_worker")


class WorkerRefused(RuntimeError):
    """This worker cannot grade like the batch: it does not join the cluster."""


def self_check() -> dict:
    """Check the assignment's data sets and the sandbox; returns facts about this worker, raises WorkerRefused."""
    from autograder import assignment, grade
    from autograder.data import mnist
    from autograder.execute.session import SandboxUnavailable, Session

    started = time.monotonic()
    for path in remove_stale_workdirs():  # notebooks of tasks whose worker was killed on this machine
        logger.warning("removed %s, left behind by a grading process that was killed", path)
    cfg = grade.config()
    profile = grade.profile_name()
    task = assignment.current()
    try:  # the assignment's data sets (MNIST: its four files verified by sha256, the profile's folder built)
        dataset = grade.data_profile(task, profile)
    except (mnist.MnistError, OSError) as exc:
        raise WorkerRefused(f"MNIST is not usable on this worker: {exc}") from None
    try:
        with Session(["answer = 6 * 7\nprint(answer)"], [], files=task.public_files,
                     data_dir=dataset.sandbox_root if dataset else None, limits=cfg.LIMITS, seed=cfg.COURSE_SEED,
                     threads=cfg.TORCH_THREADS) as session:
            records = session.run_notebook()
    except SandboxUnavailable as exc:
        raise WorkerRefused(f"the sandbox cannot be set up on this worker: {exc}") from None
    if not records or records[0].status != "ok" or "42" not in (records[0].output or ""):
        raise WorkerRefused(f"the sandbox self-check failed: {records[:1]!r}")
    return {"grader_version": grade.grader_version(), "mnist_profile": profile if dataset else None,
            "gpus": gpu_count(), "gpu_slots": gpu_slots(),
            "self_check_s": round(time.monotonic() - started, 2)}


async def dask_setup(worker) -> None:
    """Dask calls this before the worker registers with the scheduler. Distributed only logs an exception
    raised here and lets the worker join anyway, so a refusal closes the worker's nanny (which would start
    the worker again) and ends the worker process itself."""
    import asyncio

    try:
        nthreads = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", 1)
        if nthreads != 1:
            raise WorkerRefused(f"autograder workers run one task at a time: start them with --nthreads 1 "
                                f"(this one has {nthreads}); use --nworkers N for N sandboxes")
        facts = await asyncio.get_running_loop().run_in_executor(None, self_check)
        expected = await worker.scheduler.get_metadata(keys=[META_GRADER_VERSION], default=None)
        if expected and expected != facts["grader_version"]:
            raise WorkerRefused(
                f"this worker's grader_version is {facts['grader_version']}, the scheduler's batches use "
                f"{expected}: start it from the same checkout, grader_config.py and AUTOGRADER_MNIST_PROFILE "
                "as the batch")
        secret = await worker.scheduler.get_metadata(keys=[META_SECRET], default=None)
        if secret and secret != secret_fingerprint():
            raise WorkerRefused("this worker's course secret is not the one the scheduler's batches use: set "
                                "the same AUTOGRADER_SECRET (or .grader_secret) as on the batch's machine")
    except Exception as exc:  # noqa: BLE001  (any failure of the checks: the worker does not join)
        message = exc if isinstance(exc, WorkerRefused) else f"self-check failed: {type(exc).__name__}: {exc}"
        logger.error("WorkerRefused: %s; this worker does not join the cluster", message)
        await _leave(worker)
        return
    worker.autograder = facts
    advertised = (getattr(getattr(worker, "state", None), "total_resources", None) or {}).get("GPU")
    if advertised and advertised > facts["gpu_slots"]:
        logger.warning("this worker advertises GPU=%s but the machine has %d GPU slot(s) (%d GPU(s) x "
                       "LIMITS['sandboxes_per_gpu'])", advertised, facts["gpu_slots"], facts["gpus"])
    logger.warning("autograder worker ready: grader_version %s, MNIST profile %s, %d GPU(s), self-check %.1f s",
                   facts["grader_version"], facts["mnist_profile"], facts["gpus"], facts["self_check_s"])


async def _leave(worker) -> None:
    """End this worker before it registers: its nanny first (so that it does not start it again)."""
    import os
    import sys

    nanny = getattr(worker, "nanny", None)
    if nanny:
        try:
            await asyncio_wait_for(worker.rpc(nanny).close_gracefully(reason="autograder worker refused"), 10)
        except Exception:  # noqa: BLE001  (the nanny is gone already)
            pass
    sys.stderr.flush()
    os._exit(3)


async def asyncio_wait_for(awaitable, seconds: float):
    import asyncio
    return await asyncio.wait_for(awaitable, seconds)
