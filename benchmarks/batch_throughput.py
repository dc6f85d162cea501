"""Throughput of ``autograder batch`` against ``nbgrader autograde`` and a loop of ``otter run``, same notebooks.

    .venv/bin/python benchmarks/batch_throughput.py [--n 8] [--kinds numpy,mnist] [--workers N]
                                                     [--tools batch,nbgrader,otter] [--keep DIR]

Submissions: N copies of the solution notebook (solutions/lec03/lec03.ipynb), each with one distinct
markdown cell so that no tool can reuse a result. Two kinds:

- ``numpy``: without the MNIST part (the Q8 cells removed): seconds per notebook, start-up dominates;
- ``mnist``: the whole solution, training the MLP for two epochs on full MNIST (MNIST_PROFILE stays as
  grader_config says, ``full``; nbgrader gets data/MNIST as an instructor file of the assignment, otter as
  support files in its autograder.zip, as each tool's users would provide it).

The three tools, each in its own throwaway folder under /tmp:

- ``batch``: ``python -m autograder batch <folder> --db ... --workers N`` (sandboxed, parallel);
- ``nbgrader``: a course folder (``source/lec03`` = the solution with its nbgrader metadata, ``submitted/
  <student>/lec03``) and ``nbgrader generate_assignment`` once (not timed), then ``nbgrader autograde lec03
  --create`` (one kernel per notebook, sequential: nbgrader has no parallel autograde);
- ``otter``: ``otter generate`` with the public test files (not timed), then ``otter run`` per notebook in a
  shell loop (no Docker; one process per notebook).

Prints seconds, notebooks per minute, and the ratios batch/nbgrader and batch/otter per kind, and the
physical limit of each kind: N cores ÷ seconds of one plain single-thread run of one of the notebooks (nbclient,
``OMP_NUM_THREADS=1``, as ``benchmarks/grading_overhead.py`` runs it), with the fraction of it that
``batch`` reaches (``--no-limit`` skips that plain run). The tools do
different work (ours runs hidden tests in a sandbox, the others the public tests in the student's own
kernel), so read the ratios as "what a TA waits", not as equal work.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.ingest import names  # noqa: E402
from autograder import assignment  # noqa: E402
from autograder.layout import DATA_DIR  # noqa: E402

LEC03 = assignment.current()
CO2_CSV, PUBLIC_TESTS_DIR, SOLUTION_NOTEBOOK = LEC03.public_files["co2.csv"], LEC03.public_tests_dir, LEC03.solution_notebook

BIN = Path(sys.executable).parent


def notebooks(kind: str, n: int) -> list[tuple[str, bytes]]:
    solution = json.loads(SOLUTION_NOTEBOOK.read_text(encoding="utf-8"))
    cells = solution["cells"]
    if kind == "numpy":
        start = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                     and "".join(c["source"]).startswith("## 問8"))
        stop = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                    and "".join(c["source"]).startswith("## 提出前に"))
        cells = cells[:start] + cells[stop:]
    out = []
    for k in range(n):
        nb = dict(solution, cells=cells + [{"cell_type": "markdown", "id": f"bench{k}", "metadata": {},
                                            "source": [f"benchmark copy {k}"]}])
        out.append((f"student{k:03d}", (json.dumps(nb, ensure_ascii=False, indent=1) + "\n").encode()))
    return out


def timed(cmd, cwd, env=None, log=None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, shell=isinstance(cmd, str))
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"  warning: {cmd if isinstance(cmd, str) else ' '.join(map(str, cmd))} exited {done.returncode}")
    return elapsed


def run_batch(subs, work: Path, workers: int, log) -> float:
    folder = work / "submissions"
    folder.mkdir()
    for i, (student, data) in enumerate(subs):
        prefix = names.canvas_prefix(f"Bench, {student}", 5000 + i)
        (folder / names.entry_name(prefix, 9000 + i, "lec03.ipynb")).write_bytes(data)
    return timed([sys.executable, "-m", "autograder", "batch", str(folder), "--db", str(work / "gradebook.db"),
                  "--workers", str(workers)], ROOT, log=log)


def run_nbgrader(subs, work: Path, log) -> float:
    course = work / "course"
    (course / "source" / "lec03").mkdir(parents=True)
    shutil.copy(SOLUTION_NOTEBOOK, course / "source" / "lec03" / "lec03.ipynb")
    shutil.copy(CO2_CSV, course / "source" / "lec03" / "co2.csv")
    # the instructor's files: autograde copies them into every student's folder (it follows no links)
    shutil.copytree(DATA_DIR / "MNIST" / "raw", course / "source" / "lec03" / "data" / "MNIST" / "raw")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'lec03bench'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.ClearSolutions.enforce_metadata = False\n"
        "c.ExecutePreprocessor.timeout = 900\n"
        "c.CourseDirectory.max_file_size = 1000000\n"     # KB
        "c.CourseDirectory.max_dir_size = 1000000\n")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    timed([str(BIN / "nbgrader"), "generate_assignment", "lec03", "--force"], course, env, log)
    for student, data in subs:
        folder = course / "submitted" / student / "lec03"
        folder.mkdir(parents=True)
        (folder / "lec03.ipynb").write_bytes(data)
    return timed([str(BIN / "nbgrader"), "autograde", "lec03", "--create", "--force"], course, env, log)


def run_otter(subs, work: Path, log, kind: str) -> float:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    gen = work / "generate"
    shutil.copytree(PUBLIC_TESTS_DIR, gen / "tests")
    shutil.copy(CO2_CSV, gen / "co2.csv")
    support = ["co2.csv"]
    if kind == "mnist":     # otter run grades in a fresh temporary folder: MNIST must travel as support files
        shutil.copytree(DATA_DIR / "MNIST" / "raw", gen / "data" / "MNIST" / "raw")
        support += sorted(str(p.relative_to(gen)) for p in (gen / "data" / "MNIST" / "raw").iterdir())
    timed([str(BIN / "otter"), "generate", "-t", "tests", "--no-requirements", "--no-environment", "--no-config",
           "-o", str(work / "autograder.zip"), *support], gen, env, log)
    folder = work / "subs"
    folder.mkdir()
    for student, data in subs:
        (folder / f"{student}.ipynb").write_bytes(data)
    loop = (f"for f in {folder}/*.ipynb; do {BIN}/otter run -a {work}/autograder.zip --no-logo "
            f"-o {work}/out_$(basename $f .ipynb) $f || true; done")
    for student, _ in subs:
        (work / f"out_{student}").mkdir()
    return timed(loop, folder, env, log)


def plain_single_thread(data: bytes) -> float:
    """Seconds of one plain nbclient run of the notebook on one thread (the kernel inherits the variables)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import grading_overhead
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "JUPYTER_PATH")}
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
            grading_overhead.pin_python3_kernel(Path(tmp))
            return grading_overhead.execute_plain(json.loads(data))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def trained(tool: str, work: Path) -> str:
    """Evidence that the MLP really trained on MNIST (a tool that cannot read the data finishes early)."""
    if tool == "batch":
        import sqlite3
        conn = sqlite3.connect(work / "gradebook.db")
        acc = [json.loads(r[0]).get("mnist_accuracy") for r in conn.execute("SELECT measurements FROM results")]
        return f"hidden-test accuracy {min(acc):.4f}-{max(acc):.4f}" if all(acc) else "NO ACCURACY: not trained?"
    if tool == "nbgrader":
        texts = [p.read_text(encoding="utf-8") for p in (work / "course" / "autograded").glob("*/lec03/lec03.ipynb")]
        ok = sum("final test accuracy" in t and "Error downloading" not in t for t in texts)
        return f"{ok}/{len(texts)} notebooks printed a final test accuracy"
    return "(otter keeps no executed notebook; MNIST travels in autograder.zip)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="submissions per kind (default 8)")
    ap.add_argument("--kinds", default="numpy,mnist")
    ap.add_argument("--tools", default="batch,nbgrader,otter")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", help="keep the work folders here (default: a temporary folder, removed)")
    ap.add_argument("--no-limit", action="store_true", help="skip the plain single-thread run (the limit)")
    args = ap.parse_args(argv)
    if not SOLUTION_NOTEBOOK.exists():
        print(f"error: {SOLUTION_NOTEBOOK} is missing: run 'python -m autograder build'", file=sys.stderr)
        return 1
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="autograder-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"{args.n} submissions per kind, {args.workers} batch workers, {os.cpu_count()} CPUs; logs in {base}")
    results: dict[tuple[str, str], float] = {}
    try:
        for kind in args.kinds.split(","):
            subs = notebooks(kind, args.n)
            for tool in args.tools.split(","):
                work = base / f"{kind}-{tool}"
                work.mkdir()
                with open(work / "log.txt", "w") as log:
                    if tool == "batch":
                        seconds = run_batch(subs, work, args.workers, log)
                    elif tool == "nbgrader":
                        seconds = run_nbgrader(subs, work, log)
                    elif tool == "otter":
                        seconds = run_otter(subs, work, log, kind)
                    else:
                        raise SystemExit(f"unknown tool {tool}")
                results[kind, tool] = seconds
                note = f"  {trained(tool, work)}" if kind == "mnist" else ""
                print(f"{kind:6s} {tool:9s} {seconds:8.1f} s  {60 * args.n / seconds:7.1f} notebooks/min{note}",
                      flush=True)
            if not args.no_limit and (kind, "batch") in results:
                plain = plain_single_thread(subs[0][1])
                cores = os.cpu_count() or 1
                limit = 60 * cores / plain
                reached = 60 * args.n / results[kind, "batch"]
                print(f"{kind:6s} limit: {cores} cores / {plain:.1f} s per plain single-thread run = "
                      f"{limit:.1f} notebooks/min; batch reaches {reached:.1f} = {reached / limit:.0%} of it",
                      flush=True)
        for kind in args.kinds.split(","):
            ours = results.get((kind, "batch"))
            for other in ("nbgrader", "otter"):
                if ours and (kind, other) in results:
                    print(f"{kind}: batch is {results[kind, other] / ours:.2f}x the throughput of {other}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
