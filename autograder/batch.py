"""``python -m autograder batch INPUT``: grade a K-LMS submissions zip (or a folder) into the gradebook.

INPUT is Canvas's "Download Submissions" zip or a folder of notebooks. Each student's notebook is chosen
(``autograder.ingest``), graded by ``autograder.grade.grade_notebook`` in a pool of worker processes
(each call runs the notebook in its own sandbox child), and every finished result is written to the
SQLite gradebook in its own transaction (``autograder.gradebook``).

Resumable: a notebook whose sha256 already has a result from this grader_version is not graded again
(``--force`` regrades); results with status ``sandbox_error`` are retried. Killing the batch at any moment,
``kill -9`` included, loses only the results in flight, and the next run grades exactly those.

One batch at a time per gradebook: a batch holds an exclusive ``flock`` on the gradebook file, and marks
runs that an earlier, killed batch left ``running`` as ``interrupted``.

No grading process outlives the batch: each worker asks the kernel for SIGTERM when the batch dies
(``prctl(PR_SET_PDEATHSIG)``), also watches its parent pid, and then kills its whole process subtree
(the sandbox children) before it exits; the batch kills its own subtree on Ctrl-C / SIGTERM.
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

from . import gradebook, ingest
from .canvas import roster as roster_mod

PR_SET_PDEATHSIG = 1
MAX_POOL_RESTARTS = 3


# --- process-tree hygiene (used in the workers and in the batch) ---------------------------------------

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


def _die_with_children(*_args) -> None:
    kill_tree(os.getpid())
    os._exit(1)


def _init_worker(batch_pid: int) -> None:
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


def _grade_one(path: str) -> dict:
    """Runs in a worker: one notebook through the sandboxed grader; never raises for a bad notebook."""
    from .grade import grade_notebook
    result = grade_notebook(Path(path))
    json.dumps(result)                 # fail here, in the worker, if the result is not plain data
    return result


def failed_result(message: str, duration_s: float = 0.0) -> dict:
    """The result recorded when the grading machinery itself failed (retried by the next batch)."""
    return {"status": "sandbox_error", "message": message, "total": 0.0,
            "max_total": gradebook.max_total(), "questions": {}, "cells": [], "measurements": {},
            "duration_s": duration_s}


# --- the command --------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("input", help="K-LMS 'Download Submissions' zip, or a folder of notebooks")
    parser.add_argument("--db", default="gradebook.db", help="the SQLite gradebook (default: gradebook.db)")
    parser.add_argument("--roster", help="the gradebook CSV exported from K-LMS (lists every student)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="grading processes (default: the number of CPUs)")
    parser.add_argument("--force", action="store_true", help="regrade notebooks already graded")
    parser.add_argument("--pick", action="append", default=[], metavar="STUDENT=ATTACHMENT_ID",
                        help="grade this attachment of a student who attached several notebooks (kept)")
    parser.add_argument("--by", help="who runs the batch, for the audit log (default: your user name)")


def run(args) -> int:
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    by = gradebook.who(args.by)
    if args.workers < 1:
        err.print("error: --workers must be at least 1")
        return 2
    try:
        conn = gradebook.connect(args.db)
        lock = _lock(args.db)
        if args.roster:
            rows, warnings = roster_mod.read_roster(args.roster)
            for w in warnings:
                err.print(f"warning: {w}")
            gradebook.load_roster(conn, rows, by)
        for pick in args.pick:
            who_, _, attachment = pick.partition("=")
            if not attachment.strip().isdigit():
                raise gradebook.GradebookError(f"--pick wants STUDENT=ATTACHMENT_ID, got {pick!r}")
            gradebook.set_pick(conn, gradebook.resolve_student(conn, who_), attachment.strip(), by)
    except (roster_mod.RosterError, gradebook.GradebookError, OSError) as exc:
        err.print(f"error: {exc}")
        return 1
    try:
        return _run_locked(args, conn, by, out, err)
    finally:
        conn.close()
        os.close(lock)


def _lock(db) -> int:
    """An exclusive flock on the gradebook file for this batch (released by the kernel if it dies).

    flock and SQLite's own POSIX locks do not interact; the descriptor stays open until the connection is
    closed, so closing it cannot drop SQLite's locks."""
    fd = os.open(db, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise gradebook.GradebookError(f"another batch is running on {db}; wait for it (or stop it) first") from None
    return fd


def _run_locked(args, conn, by: str, out, err) -> int:
    from .grade import grader_version
    version = grader_version()
    workdir = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    batch_id = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, _raise_interrupt)
    try:
        try:
            got = ingest.ingest(args.input, workdir, gradebook.roster_user_ids(conn))
        except (ingest.IngestError, OSError) as exc:
            err.print(f"error: {exc}")
            return 1
        stale = gradebook.mark_interrupted(conn, by)
        if stale:
            err.print(f"an earlier batch stopped part-way ({stale} run); its finished results are kept", soft_wrap=True)
        batch_id = gradebook.begin_batch(conn, input=str(args.input), input_sha256=got.input_sha256,
                                         grader_version=version, by=by, workers=args.workers)
        students = ingest.choose(got, gradebook.picks(conn))
        todo = _record_ingest(conn, batch_id, got, students)
        todo = {sha: path for sha, path in todo.items() if args.force or not gradebook.has_result(conn, sha, version)}
        reused = len({s.chosen.sha256 for s in students.values() if s.chosen and not s.chosen.too_large}) - len(todo)
        err.print(f"{len(got.notebooks)} notebooks from {len(students)} students, {len(got.skipped)} other files; "
                  f"grading {len(todo)}, {reused} already graded by grader {version}", soft_wrap=True)
        graded = _grade_all(conn, todo, version, batch_id, by, args.workers, err)
        grades = gradebook.refresh_grades(conn)
        gradebook.end_batch(conn, batch_id, "finished", by, graded=graded)
    except KeyboardInterrupt:
        kill_tree(os.getpid())
        err.print("interrupted: finished results are saved; run the same command again to go on", soft_wrap=True)
        if batch_id is not None:
            gradebook.end_batch(conn, batch_id, "interrupted", by)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(workdir, ignore_errors=True)
    _summary(out, conn, grades, got, graded)
    return 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _record_ingest(conn, batch_id: int, got: ingest.Ingested, students: dict) -> dict[str, Path]:
    """Write the submissions, the skipped files and each student's choice; the notebooks to grade by sha."""
    by_sha: dict[str, list[str]] = {}
    for s in students.values():
        if s.chosen is not None and s.user_id is not None:
            by_sha.setdefault(s.chosen.sha256, []).append(s.key)
    todo: dict[str, Path] = {}
    with gradebook.transaction(conn):
        for sk in got.skipped:
            z = sk.zname
            gradebook.record_entry(conn, batch_id, sk.name, sk.size, sk.reason, sk.student_key,
                                   z.user_id if z else None, (z.name_slug or "") if z else "")
        for s in sorted(students.values(), key=lambda s: s.key):
            current = None
            for nb in s.notebooks:
                flags = list(s.flags)
                if nb is s.chosen:
                    same = [k for k in by_sha.get(nb.sha256, []) if k != s.key]
                    if same and s.user_id is not None:
                        flags.append("same_file_as: " + ", ".join(same))
                sub_id = gradebook.record_submission(
                    conn, batch_id, student_key=s.key, user_id=s.user_id, name_slug=s.name_slug,
                    entry_name=nb.entry_name, filename=nb.filename,
                    attachment_id=nb.zname.attachment_id if nb.zname else None, sha256=nb.sha256, size=nb.size,
                    late=s.late, flags=flags if nb is s.chosen else flags + ["not_chosen"])
                if nb is s.chosen:
                    current = sub_id
                    if nb.path is not None:
                        todo.setdefault(nb.sha256, nb.path)
            gradebook.set_current(conn, s.key, current)
    return todo


def _grade_all(conn, todo: dict[str, Path], version: str, batch_id: int, by: str, workers: int, err) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not todo:
        return 0
    counts: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    pending = dict(sorted(todo.items(), key=lambda kv: kv[1].name))
    done = 0
    columns = (TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[counts]}"))
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("grading", total=len(todo), counts="")
        while pending:
            ctx = multiprocessing.get_context("spawn")
            pool = cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(pending))), mp_context=ctx,
                                          initializer=_init_worker, initargs=(os.getpid(),))
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
                        result = failed_result(f"worker error: {type(exc).__name__}: {exc}\n"
                                               + "".join(traceback.format_exception(exc))[-2000:])
                    gradebook.record_result(conn, sha, version, result, batch_id, by)
                    pending.pop(sha, None)
                    counts[str(result.get("status"))] += 1
                    done += 1
                    progress.update(task, completed=done,
                                    counts="  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            finally:
                kill_tree_of_pool(pool)
            if broken:
                err.print(f"warning: a grading worker died; restarting the pool for {len(broken)} notebooks")
    return done


def kill_tree_of_pool(pool: cf.ProcessPoolExecutor) -> None:
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


def _summary(out, conn, grades: list[gradebook.Grade], got: ingest.Ingested, graded: int) -> None:
    from rich.table import Table

    statuses = Counter(g.status for g in grades)
    scored = [g.final_score for g in grades if g.final_score is not None and g.status not in ("missing",)]
    t = Table(title="batch summary", show_header=False)
    t.add_row("students", str(len(grades)))
    t.add_row("graded in this run", str(graded))
    for status, n in sorted(statuses.items()):
        t.add_row(f"  {status}", str(n))
    t.add_row("mean final score", f"{sum(scored) / len(scored):.2f} / {gradebook.max_total():.1f}" if scored else "-")
    t.add_row("files not graded", str(len(got.skipped)))
    out.print(t)
    slow = sorted((g for g in grades if g.result), key=lambda g: -(g.result.get("duration_s") or 0))[:5]
    if slow:
        s = Table(title="slowest submissions")
        for col in ("student", "file", "status", "seconds"):
            s.add_column(col)
        for g in slow:
            s.add_row(g.student_key, g.filename or "", g.status, f"{g.result.get('duration_s') or 0:.1f}")
        out.print(s)
    flagged = [g for g in grades if g.flags or g.status not in ("ok", "missing")]
    if flagged:
        f = Table(title="for a TA to look at")
        for col in ("student", "status", "flags / message"):
            f.add_column(col)
        for g in flagged:
            f.add_row(g.student_key, g.status, "; ".join(g.flags + ([g.message] if g.message and g.status != "ok" else [])))
        out.print(f)
    if got.skipped:
        k = Table(title="files not graded")
        k.add_column("file")
        k.add_column("why")
        for sk in got.skipped:
            k.add_row(sk.name, sk.reason)
        out.print(k)
