"""Scaling of ``autograder batch``: the same N submissions with 1, 2, … workers, local pool vs a loopback Dask cluster.

    .venv/bin/python benchmarks/scaling.py [--n 4] [--kind numpy|mnist] [--workers 1,2] [--backends local,dask]

Submissions: as ``benchmarks/batch_throughput.py`` makes them (copies of the solution, each with a distinct
markdown cell; ``numpy`` without the MNIST part, ``mnist`` the whole solution). For each backend and worker
count, a fresh gradebook and one timed ``batch`` command:

- ``local``: ``batch DIR --workers W`` (the process pool);
- ``dask``: a scheduler and W workers on 127.0.0.1 (``dask worker ... --nthreads 1 --preload
  autograder.batch.dask_worker``), started and self-checked before the clock starts (a cluster is started once a
  term, not per batch), then ``batch DIR --scheduler tcp://127.0.0.1:PORT``.

Prints notebooks per minute, efficiency (throughput ÷ (W × the same backend's 1-worker throughput)) and,
per W, the cluster's throughput as a fraction of the local pool's. Run on an otherwise idle machine; the
load average is printed with each line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from batch_throughput import notebooks  # noqa: E402

from autograder.ingest import names  # noqa: E402

DASK = str(Path(sys.executable).with_name("dask"))


def write_submissions(subs, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, (student, data) in enumerate(subs):
        prefix = names.canvas_prefix(f"Bench, {student}", 5000 + i)
        (folder / names.entry_name(prefix, 9000 + i, "lec03.ipynb")).write_bytes(data)
    return folder


def timed_batch(folder: Path, db: Path, *extra: str, env=None) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", str(folder), "--db", str(db), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"batch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


class LoopbackCluster:
    def __init__(self, work: Path, workers: int, env: dict):
        self.procs = []
        sched_file = work / "scheduler.json"
        self.procs.append(self._spawn(work / "scheduler.log", env, [
            DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
            "--scheduler-file", str(sched_file)]))
        deadline = time.monotonic() + 60
        while not (sched_file.exists() and sched_file.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        self.address = json.loads(sched_file.read_text())["address"]
        for i in range(workers):
            self.procs.append(self._spawn(work / f"worker{i}.log", env, [
                DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                "--dashboard-address", "127.0.0.1:0", "--preload", "autograder.batch.dask_worker"]))
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=600)

    @staticmethod
    def _spawn(log: Path, env, cmd):
        with open(log, "wb") as out:
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def close(self):
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def load() -> str:
    return "load %.1f %.1f %.1f" % os.getloadavg()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4, help="submissions (default 4)")
    ap.add_argument("--kind", default="numpy", choices=("numpy", "mnist"))
    ap.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    ap.add_argument("--backends", default="local,dask")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    base = Path(tempfile.mkdtemp(prefix="autograder-scaling-"))
    subs = notebooks(args.kind, args.n)
    print(f"{args.n} {args.kind} submissions, workers {counts}, {os.cpu_count()} CPUs, {load()}", flush=True)
    rate: dict[tuple[str, int], float] = {}
    try:
        for backend in args.backends.split(","):
            for w in counts:
                work = base / f"{backend}-{w}"
                folder = write_submissions(subs, work / "in")
                if backend == "local":
                    seconds = timed_batch(folder, work / "g.db", "--workers", str(w), env=env)
                elif backend == "dask":
                    cluster = LoopbackCluster(work, w, env)
                    try:
                        seconds = timed_batch(folder, work / "g.db", "--scheduler", cluster.address, env=env)
                    finally:
                        cluster.close()
                else:
                    raise SystemExit(f"unknown backend {backend}")
                rate[backend, w] = 60 * args.n / seconds
                one = rate.get((backend, counts[0]))
                eff = rate[backend, w] / (w / counts[0] * one) if one else float("nan")
                print(f"{backend:5s} {w} workers: {seconds:7.1f} s  {rate[backend, w]:6.2f} notebooks/min  "
                      f"efficiency {eff:.2f}  ({load()})", flush=True)
        for w in counts:
            if ("local", w) in rate and ("dask", w) in rate:
                print(f"{w} workers: loopback Dask cluster = {rate['dask', w] / rate['local', w]:.2f} of the "
                      f"local pool's throughput", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
