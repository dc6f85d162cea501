"""``batch --scheduler``: a real Dask scheduler and two real workers (subprocesses on 127.0.0.1, the
preload ``autograder.batch.dask_worker``, the small MNIST profile) grade the same submissions as the local pool;
a worker killed with SIGKILL mid-batch loses nothing; a worker with another grader_version is refused;
Ctrl-C leaves no task running and the gradebook consistent."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import notebook_variants as nv
from autograder.batch import processes
from autograder.batch import executors
from autograder.ingest import submissions as ingest
from autograder.layout import EXAMPLES_DIR, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402
import scaling  # noqa: E402  (its loopback cluster's close)

pytestmark = pytest.mark.sandbox

ENV = {**os.environ, "AUTOGRADER_MNIST_PROFILE": "small", "PYTHONPATH": str(ROOT),
       "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
DASK = str(Path(sys.executable).with_name("dask"))
N = 4                                            # submissions per batch
WORKER_START_S = 240                             # a worker's self-check runs a sandbox: generous on a busy CI


def count(db, sql):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def rows(db, sql):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def comparable(result: dict) -> dict:
    """What must not depend on where a notebook was graded (timings and the sandbox's wording set aside)."""
    return {"status": result["status"], "total": result["total"],
            "questions": {q: {"score": v["score"], "parts": v.get("parts"),
                              "checks": [(c["name"], c.get("part"), c["passed"]) for c in v["checks"]]}
                          for q, v in result["questions"].items()},
            "cells": [(c["index"], c["status"]) for c in result["cells"]],
            "seed": result.get("seed"), "grader_version": result.get("grader_version"),
            "mnist_profile": result.get("mnist_profile"), "flags": result.get("flags")}


def results_by_sha(db) -> dict:
    return {sha: comparable(json.loads(r)) for sha, r in rows(db, "SELECT sha256, result_json FROM results")}


@pytest.fixture(scope="module")
def subs(tmp_path_factory):
    """Four students' notebooks from the example zip, lean (no MNIST training, no otter: a few seconds a
    grade), four different files (two students' lean variants are the same file)."""
    tmp = tmp_path_factory.mktemp("subs")
    got = ingest.ingest(EXAMPLES_DIR / "submissions.zip", tmp / "x")
    folder = tmp / "in"
    folder.mkdir()
    seen = set()
    for nb in sorted(got.notebooks, key=lambda nb: nb.student_key):
        if not nb.filename.startswith("lec03"):
            continue
        data = nv.dumps(nv.lean(nv.load(nb.path)))
        if data not in seen and len(seen) < N:
            seen.add(data)
            (folder / nb.entry_name).write_bytes(data)
    assert len(seen) == N
    return folder


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._spawn("scheduler.log", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                       "--dashboard-address", "127.0.0.1:0",
                                                       "--scheduler-file", str(self.file)])
        deadline = time.monotonic() + 60
        while not (self.file.exists() and self.file.stat().st_size) and time.monotonic() < deadline:
            assert self.scheduler.poll() is None, (tmp / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.3)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self.start_worker(f"worker{i}.log") for i in range(2)]
        self.wait_workers(2)

    def _spawn(self, log: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        out = open(self.tmp / log, "wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.close()
        self.procs.append(proc)
        return proc

    def start_worker(self, log: str, env: dict | None = None) -> subprocess.Popen:
        return self._spawn(log, [DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                 "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                                 "--preload", "autograder.batch.dask_worker"], env)

    def client(self):
        from distributed import Client
        return Client(self.address, timeout=30, set_as_default=False)

    def n_workers(self) -> int:
        with self.client() as c:
            return len(c.scheduler_info(n_workers=-1)["workers"])

    def wait_workers(self, n: int, seconds: float = WORKER_START_S) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.n_workers() >= n:
                return
            time.sleep(1)
        logs = "\n".join((self.tmp / f"worker{i}.log").read_text(errors="replace")[-3000:] for i in range(2))
        raise AssertionError(f"{n} workers did not join within {seconds} s:\n{logs}")

    def scheduler_tasks(self) -> int:
        with self.client() as c:
            return c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    def worker_processes(self) -> list[int]:
        """The worker processes (below each `dask worker` nanny), not the nannies."""
        out = []
        for w in self.workers:
            for pid in processes.descendants(w.pid):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"multiprocessing" in cmd and b"resource_tracker" not in cmd:
                    out.append(pid)
        return out

    def sandboxes(self) -> set[int]:
        return {p for w in self.worker_processes() for p in processes.descendants(w)}

    close = scaling.LoopbackCluster.close     # SIGTERM to every process group, SIGKILL after 30 s


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.close()


def run_batch(folder, db, *extra, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", "batch", str(folder), "--db", str(db), *extra],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def start_batch(folder, db, *extra):
    return subprocess.Popen([sys.executable, "-m", "autograder", "batch", str(folder), "--db", str(db), *extra],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)


def _default_sigint():
    """A test run started in the background (``pytest &``) ignores SIGINT, and so would the batch."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate, seconds: float, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the batch ended early: {proc.communicate()}")
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def local(subs, tmp_path_factory):
    """The same submissions through the local process pool: what the cluster must give."""
    db = tmp_path_factory.mktemp("local") / "local.db"
    done = run_batch(subs, db, "--workers", "2")
    assert done.returncode == 0, done.stderr
    return results_by_sha(db)


def test_cluster_grades_as_the_local_pool(subs, cluster, local, tmp_path):
    dask = run_batch(subs, tmp_path / "dask.db", "--scheduler", cluster.address)
    assert dask.returncode == 0, dask.stderr
    assert f"grading {N}, 0 already graded" in dask.stderr.replace("\n", " ")
    here, there = local, results_by_sha(tmp_path / "dask.db")
    assert len(here) == N and here == there
    assert {r["status"] for r in there.values()} == {"ok"}
    assert len({r["total"] for r in there.values()}) > 1          # 1002's mistakes cost points on both
    # the batch records the cluster, not the local --workers default
    assert count(tmp_path / "dask.db", "SELECT count(*) FROM batches WHERE workers IS NULL") == 1
    assert count(tmp_path / "dask.db", "SELECT count(*) FROM audit WHERE action='batch_start' "
                 f"AND detail LIKE '%{cluster.address}%'") == 1
    # resumable as with the local pool: nothing is graded again, --force grades everything again
    again = run_batch(subs, tmp_path / "dask.db", "--scheduler", cluster.address)
    assert again.returncode == 0 and f"grading 0, {N} already graded" in again.stderr.replace("\n", " ")
    assert count(tmp_path / "dask.db", "SELECT count(*) FROM audit WHERE action='graded'") == N
    assert cluster.scheduler_tasks() == 0


def test_a_worker_killed_mid_batch_loses_nothing(subs, cluster, local, tmp_path):
    cluster.wait_workers(2)
    db = tmp_path / "gradebook.db"
    proc = start_batch(subs, db, "--scheduler", cluster.address)
    try:
        busy = wait_for(lambda: [w for w in cluster.worker_processes() if processes.descendants(w)], 300, proc)
        assert busy, "no worker started a sandbox"
        os.kill(busy[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert count(db, "SELECT count(*) FROM results") == N
    assert count(db, "SELECT count(*) FROM audit WHERE action='graded'") == N   # none twice
    assert results_by_sha(db) == local
    cluster.wait_workers(2)             # the nanny started the killed worker again (after its self-check)


def test_a_worker_with_another_grader_version_is_refused(cluster, tmp_path):
    from autograder.grade import grader_version
    with cluster.client() as c:
        c.set_metadata(executors.META_GRADER_VERSION, grader_version())   # what a batch sets
    before = cluster.n_workers()
    # the full MNIST profile is another grader_version than the cluster's small one
    odd = cluster.start_worker("odd.log", env={**ENV, "AUTOGRADER_MNIST_PROFILE": "full"})
    try:
        odd.wait(timeout=WORKER_START_S)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker with another grader_version did not stop: "
                    + (cluster.tmp / "odd.log").read_text(errors="replace")[-3000:])
    log = (cluster.tmp / "odd.log").read_text(errors="replace")
    assert odd.returncode != 0
    assert "WorkerRefused" in log and f"the scheduler's batches use {grader_version()}" in log, log[-3000:]
    assert cluster.n_workers() == before
    # and a task that reaches a worker of another version anyway is refused there, with the reason
    with pytest.raises(executors.GraderVersionMismatch, match="the batch expects 0000"):
        executors.grade_bytes("x.ipynb", b"{}", "0000")


def test_ctrl_c_cancels_every_task_and_keeps_the_gradebook(subs, cluster, local, tmp_path):
    cluster.wait_workers(2)
    db = tmp_path / "gradebook.db"
    proc = start_batch(subs, db, "--scheduler", cluster.address)
    try:
        assert wait_for(lambda: cluster.sandboxes(), 300, proc), "no sandbox started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err, err
    # nothing left on the cluster: no task on the scheduler, no sandbox on a worker
    assert wait_for(lambda: cluster.scheduler_tasks() == 0 and not cluster.sandboxes(), 60), \
        (cluster.scheduler_tasks(), cluster.sandboxes())
    assert count(db, "PRAGMA integrity_check") == "ok"
    assert count(db, "SELECT state FROM batches") == "interrupted"
    recorded = count(db, "SELECT count(*) FROM results")
    assert recorded < N
    # the next run grades exactly what is missing
    done = run_batch(subs, db, "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr
    assert f"grading {N - recorded}, {recorded} already graded" in done.stderr.replace("\n", " ")
    assert results_by_sha(db) == local
    assert count(db, "SELECT count(*) FROM audit WHERE action='graded'") == N


def test_no_scheduler_is_a_clear_error(subs, tmp_path):
    done = run_batch(subs, tmp_path / "g.db", "--scheduler", "tcp://127.0.0.1:9", "--worker-wait", "5",
                     timeout=180)
    assert done.returncode == 1 and "cannot reach the Dask scheduler" in done.stderr, done.stderr
    assert count(tmp_path / "g.db", "SELECT count(*) FROM results") == 0


def test_no_gpu_here_means_no_gpu_resource(monkeypatch):
    gpus = len([p for p in Path("/dev").glob("nvidia[0-9]*")])
    assert executors.gpu_count() == gpus
    assert (executors.gpu_slots() == 0) == (gpus == 0)
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", "x", "--gpu"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--gpu goes with --scheduler" in done.stderr


def test_the_sandbox_sees_the_gpus_the_machine_has():
    """Without a GPU (this machine) the sandbox child sees none and nothing else changes; with one, torch
    inside the sandbox finds it (the device nodes are bound, the driver's libraries come with /usr)."""
    seen = gpu_check.gpu_in_sandbox()
    gpus = executors.gpu_count()
    assert seen.startswith(f"CUDA {gpus > 0} {gpus}"), seen
