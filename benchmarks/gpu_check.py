"""GPU grading on a machine with an NVIDIA GPU: one line per figure, in at most 8 minutes.

    .venv/bin/python benchmarks/gpu_check.py [--n 32] [--workers N] [--budget-s 480]

Prints, each on its own line (``figure: value``):

1. ``gpu in sandbox``: what ``torch.cuda`` says inside a real sandbox child (available, count, name);
2. ``solution on gpu``: the solution notebook graded (full MNIST unless AUTOGRADER_MNIST_PROFILE says
   otherwise): status, total, the device the notebook's ``get_device()`` chose, hidden-half accuracy, seconds;
3. ``solution on cpu``: the same solution with ``torch.cuda.is_available()`` replaced by ``False`` in the
   notebook (the same sandbox, the GPU unused): accuracy and seconds, and the GPU/CPU ratio;
4. ``batch``: ``python -m autograder batch`` of N (default 32) full submissions (distinct copies of the
   solution) with as many workers as the machine has cores: seconds, notebooks per minute, devices used,
   accuracy range, and the minutes a class of 300 would take at that rate.

Without a GPU it says so on the first line and still prints the CPU figures (steps 2 and 4 then run on the
CPU). Each step has its own share of ``--budget-s``; a step that runs out prints ``timeout``.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from batch_throughput import notebooks  # noqa: E402

from autograder import assignment  # noqa: E402
from autograder.ingest import names  # noqa: E402

CUDA_PROBE = ("import torch\n"
              "print('CUDA', torch.cuda.is_available(), torch.cuda.device_count(),\n"
              "      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')\n")


def line(figure: str, value: str) -> None:
    print(f"{figure}: {value}", flush=True)


def gpu_in_sandbox() -> str:
    from autograder import grade
    from autograder.execute.session import Session
    cfg = grade.config()
    with Session([CUDA_PROBE], [], files=assignment.current().public_files, data_dir=None, limits=cfg.LIMITS,
                 seed=cfg.COURSE_SEED, threads=cfg.TORCH_THREADS) as session:
        records = session.run_notebook()
    r = records[0]
    out = (r.output or "").strip().splitlines()
    return (out[-1] if out else f"{r.status} {r.error}") + f" (host /dev/nvidia*: {len(list(Path('/dev').glob('nvidia[0-9]*')))} GPU)"


def grade_bytes_in_child(data: bytes, timeout: float) -> dict | None:
    """grade_notebook in a child Python (so that a hang costs only this step's share of the budget)."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        path = Path(tmp) / "lec03.ipynb"
        path.write_bytes(data)
        code = ("import json, sys; from pathlib import Path; from autograder.grade import grade_notebook; "
                "print(json.dumps(grade_notebook(Path(sys.argv[1]))))")
        try:
            done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0:
            return {"status": "error", "message": done.stderr[-500:], "measurements": {}}
        return json.loads(done.stdout.strip().splitlines()[-1])


def describe(result: dict | None) -> str:
    if result is None:
        return "timeout"
    m = result.get("measurements") or {}
    acc = m.get("mnist_accuracy")
    return (f"{result.get('status')} {result.get('total')}/{result.get('max_total')}, device "
            f"{m.get('device')}, accuracy {acc if acc is None else f'{acc:.4f}'}, "
            f"{result.get('duration_s', 0):.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--budget-s", type=float, default=480)
    args = ap.parse_args(argv)
    started = time.monotonic()

    def left(share: float) -> float:
        return max(10.0, min(share, args.budget_s - (time.monotonic() - started) - 5))

    line("machine", f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, MNIST profile "
         f"{os.environ.get('AUTOGRADER_MNIST_PROFILE') or 'grader_config'}")
    try:
        line("gpu in sandbox", gpu_in_sandbox())
    except Exception as exc:  # noqa: BLE001  (a figure, not a crash)
        line("gpu in sandbox", f"error: {type(exc).__name__}: {exc}")

    solution = assignment.current().solution_notebook.read_bytes()
    on_gpu = grade_bytes_in_child(solution, left(120))
    line("solution on gpu", describe(on_gpu))
    cpu_nb = solution.replace(b"torch.cuda.is_available()", b"False")
    on_cpu = grade_bytes_in_child(cpu_nb, left(150))
    ratio = (f"; gpu/cpu seconds {on_gpu['duration_s'] / on_cpu['duration_s']:.2f}"
             if on_gpu and on_cpu and on_cpu.get("duration_s") else "")
    line("solution on cpu", describe(on_cpu) + ratio)

    with tempfile.TemporaryDirectory(prefix="gpu-check-batch-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, (student, data) in enumerate(notebooks("mnist", args.n)):
            prefix = names.canvas_prefix(f"Bench, {student}", 5000 + i)
            (folder / names.entry_name(prefix, 9000 + i, "lec03.ipynb")).write_bytes(data)
        db = Path(tmp) / "g.db"
        t0 = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "autograder", "batch", str(folder), "--db", str(db),
                                   "--workers", str(args.workers)], cwd=ROOT, capture_output=True, text=True,
                                  timeout=left(args.budget_s))
            seconds = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            line("batch", f"timeout after {time.perf_counter() - t0:.0f} s ({args.n} submissions, "
                 f"{args.workers} workers)")
            return 1
        if done.returncode != 0:
            line("batch", f"error {done.returncode}: {done.stderr[-500:]}")
            return 1
        conn = sqlite3.connect(db)
        ms = [json.loads(r[0]) for r in conn.execute("SELECT measurements FROM results")]
        statuses = [r[0] for r in conn.execute("SELECT status FROM results")]
        conn.close()
        accs = [m.get("mnist_accuracy") for m in ms if m.get("mnist_accuracy") is not None]
        devices = sorted({str(m.get("device")) for m in ms})
        rate = 60 * args.n / seconds
        acc_text = f"accuracy {min(accs):.4f}-{max(accs):.4f}" if accs else "no accuracy"
        line("batch", f"{args.n} full submissions, {args.workers} workers: {seconds:.1f} s, {rate:.1f} "
             f"notebooks/min, {statuses.count('ok')}/{len(statuses)} ok, devices {devices}, {acc_text}; "
             f"a class of 300 in {300 / rate:.1f} min")
    line("total", f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
