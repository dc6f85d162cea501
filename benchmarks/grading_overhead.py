"""What grading costs on top of running the notebook.

    .venv/bin/python benchmarks/grading_overhead.py [--repeat N] [--profile full|small]

(a) The full solution notebook (solutions/lec03/lec03.ipynb, real MNIST training): seconds for
    ``grade_notebook`` (sandbox, hidden tests, the profile grader_config names unless --profile says
    otherwise) divided by seconds to merely execute the same notebook with nbclient: the ``python3`` kernel
    pinned to this venv's interpreter, in a temporary folder holding co2.csv and a ``data/`` link to
    ``autograder.layout.DATA_DIR`` (what a TA who "just runs it" waits). Both are measured in this one run,
    one after the other, alternating when --repeat > 1 (medians reported).
(b) The fixed overhead: the same comparison on the solution without its MLP cells (no training), as
    seconds of grading minus seconds of plain execution.

The plain kernel uses PyTorch's default thread count; the sandbox pins one thread (grader_config
TORCH_THREADS), so on a machine with more cores than this repository's 2-core target, (a) also contains
that difference. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

import notebook_variants as nv  # noqa: E402  (the tests' notebook helpers: without_mlp)
from autograder import layout  # noqa: E402
from autograder import assignment


def pin_python3_kernel(folder: Path) -> None:
    """A kernelspec named python3 that runs this interpreter (the venv), whatever else is installed."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (autograder venv)", "language": "python"}), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = str(folder)


def execute_plain(notebook: dict) -> float:
    """Seconds for nbclient to start a kernel and run every cell (errors fail the benchmark)."""
    with tempfile.TemporaryDirectory(prefix="overhead-plain-") as tmp:
        work = Path(tmp)
        (work / "co2.csv").write_bytes(assignment.current().public_files["co2.csv"].read_bytes())
        (work / "data").symlink_to(layout.DATA_DIR, target_is_directory=True)
        nb = nbformat.reads(json.dumps(notebook), as_version=4)
        client = NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=False,
                                resources={"metadata": {"path": str(work)}})
        started = time.perf_counter()
        client.execute()
        return time.perf_counter() - started


def execute_graded(notebook: dict, expected_total: float) -> tuple[float, dict]:
    from autograder.grade import grade_notebook

    with tempfile.TemporaryDirectory(prefix="overhead-graded-") as tmp:
        path = nv.write(notebook, Path(tmp) / "submission.ipynb")
        started = time.perf_counter()
        result = grade_notebook(path)
        seconds = time.perf_counter() - started
    if result["status"] != "ok" or result["total"] != expected_total:
        raise SystemExit(f"the grade is not what the solution should get: {result['status']} "
                         f"{result['total']} ({result['message']})")
    return seconds, result


def measure(label: str, notebook: dict, expected_total: float, repeat: int) -> tuple[float, float, dict]:
    plain, graded, last = [], [], {}
    for k in range(repeat):
        plain.append(execute_plain(notebook))
        seconds, last = execute_graded(notebook, expected_total)
        graded.append(seconds)
        print(f"  {label} run {k + 1}: plain nbclient {plain[-1]:7.2f} s   grade_notebook {graded[-1]:7.2f} s "
              f"(cells in the sandbox {last['measurements']['notebook_seconds']:.2f} s)", flush=True)
    return statistics.median(plain), statistics.median(graded), last


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (medians are reported)")
    parser.add_argument("--profile", choices=("full", "small"), help="MNIST profile for grading "
                        "(default: grader_config.MNIST_PROFILE)")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["AUTOGRADER_MNIST_PROFILE"] = args.profile
    else:
        os.environ.pop("AUTOGRADER_MNIST_PROFILE", None)
    if not (layout.MNIST_RAW / "t10k-images-idx3-ubyte").is_file():
        raise SystemExit(f"MNIST is missing in {layout.MNIST_RAW}: run python -m autograder fetch-data")

    from autograder import grade

    profile = grade.profile_name()
    grade.mnist_profile(profile)      # the profile's files, written once, outside the timings
    with tempfile.TemporaryDirectory(prefix="overhead-kernels-") as kernels:
        pin_python3_kernel(Path(kernels))
        print(f"machine: {os.cpu_count()} CPUs; grading profile: {profile}; repeat: {args.repeat}", flush=True)
        plain, graded, result = measure("full solution", nv.solution(), 80.0, args.repeat)
        print(f"(a) full solution: grade {graded:.2f} s / plain execution {plain:.2f} s = {graded / plain:.2f}x"
              f"  (mnist accuracy {result['measurements']['mnist_accuracy']:.4f})", flush=True)
        plain_s, graded_s, result = measure("without MLP", nv.without_mlp(nv.solution()), 70.0, args.repeat)
        notebook_s = result["measurements"]["notebook_seconds"]
        print(f"(b) without the MLP cells: grade {graded_s:.2f} s - plain execution {plain_s:.2f} s = fixed "
              f"overhead {graded_s - plain_s:.2f} s  (cells in the sandbox {notebook_s:.2f} s, hidden tests and "
              f"set-up {graded_s - notebook_s:.2f} s)", flush=True)


if __name__ == "__main__":
    main()
