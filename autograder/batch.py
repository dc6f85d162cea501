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


def _picks(parser_error, values: list[str]) -> list[tuple[str, str]]:
    out = []
    for pick in values:
        who_, _, attachment = pick.partition("=")
        if not who_.strip() or not attachment.strip().isdigit():
            parser_error(f"--pick wants STUDENT=ATTACHMENT_ID (the number the 'for a TA to look at' table "
                         f"shows), got {pick!r}")
        out.append((who_.strip(), attachment.strip()))
    return out


def run(args) -> int:
    from rich.console import Console

    from .__main__ import usage_error

    out, err = Console(), Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
    by = gradebook.who(args.by)
    if args.workers < 1:
        usage_error(args, "--workers must be at least 1")
    picks = _picks(lambda message: usage_error(args, message), args.pick)
    # everything that can fail on the command line fails before the gradebook is created
    if not Path(args.input).exists():
        err.print(f"error: {args.input}: no such file or folder")
        return 1
    roster = None
    try:
        if args.roster:
            roster = roster_mod.read_roster_full(args.roster)
        conn = gradebook.connect(args.db)
    except (roster_mod.RosterError, gradebook.GradebookError, OSError) as exc:
        err.print(f"error: {exc}")
        return 1
    try:
        lock = _lock(args.db)
    except gradebook.GradebookError as exc:
        conn.close()
        err.print(f"error: {exc}")
        return 1
    try:
        if roster is not None:
            for w in roster.warnings:
                err.print(f"warning: {w}")
            gradebook.load_roster(conn, roster.rows, by)
            if len(roster.assignments) == 1:
                title, aid = roster.assignments[0]
                gradebook.set_meta(conn, "klms_assignment_id", aid)
                gradebook.set_meta(conn, "klms_title", title)
        return _run_locked(args, conn, by, out, err, picks)
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


WORKDIR_PREFIX = "autograder-batch-"


def remove_stale_workdirs(tmp: str | None = None) -> list[str]:
    """Remove the temporary folders (extracted notebooks) of earlier batches whose process is gone
    (``kill -9``); a folder is named ``autograder-batch-<pid>-...``."""
    tmp = tmp or tempfile.gettempdir()
    removed = []
    try:
        entries = os.listdir(tmp)
    except OSError:
        return removed
    for entry in entries:
        if not entry.startswith(WORKDIR_PREFIX):
            continue
        pid = entry[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_picks(conn, got: ingest.Ingested, picks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each --pick names a student and one of that student's notebooks in this input; else GradebookError."""
    out = []
    for ident, attachment in picks:
        try:
            key = gradebook.resolve_student(conn, ident)
        except gradebook.GradebookError:
            key = ident                     # a student known only from this input
        theirs = got.attachments(key)
        ids = [n.zname.attachment_id for n in theirs if n.zname and n.zname.attachment_id]
        if attachment not in ids:
            listing = ", ".join(f"{n.zname.attachment_id} ({n.filename})" for n in theirs
                                if n.zname and n.zname.attachment_id)
            raise gradebook.GradebookError(
                f"--pick {ident}={attachment}: not one of that student's notebooks in this input"
                + (f"; theirs: {listing}" if listing else "; the input holds no notebook of theirs"))
        out.append((key, attachment))
    return out


def _run_locked(args, conn, by: str, out, err, picks: list[tuple[str, str]] = ()) -> int:
    from .grade import grader_version
    version = grader_version()
    for path in remove_stale_workdirs():
        err.print(f"removed {path}, left behind by an earlier batch that was killed", soft_wrap=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    batch_id = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, _raise_interrupt)
    try:
        try:
            got = ingest.ingest(args.input, workdir, gradebook.roster_names(conn))
            for key, attachment in _check_picks(conn, got, list(picks)):
                gradebook.set_pick(conn, key, attachment, by)
        except (ingest.IngestError, gradebook.GradebookError, OSError) as exc:
            err.print(f"error: {exc}")
            return 1
        stale = gradebook.mark_interrupted(conn, by)
        if stale:
            err.print(f"an earlier batch stopped part-way ({stale} run); its finished results are kept", soft_wrap=True)
        # the absolute path: report finds the notebooks again from whatever folder it is run in
        batch_id = gradebook.begin_batch(conn, input=str(Path(args.input).resolve()),
                                         input_sha256=got.input_sha256,
                                         grader_version=version, by=by, workers=args.workers)
        students = ingest.choose(got, gradebook.picks(conn))
        todo = _record_ingest(conn, batch_id, got, students)
        todo = {sha: path for sha, path in todo.items() if args.force or not gradebook.has_result(conn, sha, version)}
        reused = len({s.chosen.sha256 for s in students.values() if s.chosen and not s.chosen.too_large}) - len(todo)
        err.print(f"{len(got.notebooks)} notebooks from {len(students)} students, {len(got.skipped)} other files; "
                  f"grading {len(todo)}, {reused} already graded by grader {version}", soft_wrap=True)
        whose: dict[str, list[str]] = {}
        for s in students.values():
            if s.chosen is not None:
                whose.setdefault(s.chosen.sha256, []).append(s.key)
        graded = _grade_all(conn, todo, version, batch_id, by, args.workers, err, whose)
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


def record_safely(conn, sha: str, version: str, result: dict, batch_id: int, by: str, err) -> dict:
    """Store one result; a result that cannot be stored (a bug in the grader) is recorded as a grader error
    for the TA instead, and the batch goes on. Returns what was stored (None only if even that failed)."""
    try:
        gradebook.record_result(conn, sha, version, result, batch_id, by)
        return result
    except Exception as exc:  # noqa: BLE001  (one result must never end the batch)
        detail = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace").decode("utf-8")[:500]
        fallback = failed_result(f"grader error: the result of this notebook could not be stored ({detail}); "
                                 "a TA should look at it", result.get("duration_s") or 0.0
                                 if isinstance(result, dict) else 0.0)
        err.print(f"error: the result of {sha[:12]} could not be stored ({detail}); recorded as a grader error",
                  soft_wrap=True, markup=False)
        try:
            gradebook.record_result(conn, sha, version, fallback, batch_id, by)
        except Exception as exc2:  # noqa: BLE001
            err.print(f"error: could not record the grader error either: {exc2}", soft_wrap=True, markup=False)
        return fallback


def _grade_all(conn, todo: dict[str, Path], version: str, batch_id: int, by: str, workers: int, err,
               whose: dict[str, list[str]] | None = None) -> int:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    if not todo:
        return 0
    whose = whose or {}
    counts: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    pending = dict(sorted(todo.items(), key=lambda kv: kv[1].name))
    done = 0
    total = len(todo)
    plain = not err.is_terminal      # under nohup or into a log: one line per finished submission
    started = time.monotonic()
    columns = (TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[counts]}"))
    with Progress(*columns, console=err, transient=False, disable=plain) as progress:
        task = progress.add_task("grading", total=total, counts="")
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
                    if not isinstance(result, dict):
                        result = failed_result(f"grader error: the grader returned {type(result).__name__}")
                    result = record_safely(conn, sha, version, result, batch_id, by, err)
                    pending.pop(sha, None)
                    counts[str(result.get("status"))] += 1
                    done += 1
                    progress.update(task, completed=done,
                                    counts="  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
                    if plain:
                        elapsed = time.monotonic() - started
                        eta = elapsed / done * (total - done)
                        who_ = ", ".join(whose.get(sha, [])) or sha[:12]
                        err.print(f"[{done}/{total}] {who_}: {result.get('status')} "
                                  f"{gradebook._num(result.get('total')) or 0:g}/{gradebook.max_total():g} "
                                  f"({float(result.get('duration_s') or 0):.1f} s); elapsed {elapsed:.0f} s, "
                                  f"ETA {eta:.0f} s", soft_wrap=True, markup=False, highlight=False)
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


SANDBOX_NOTE_KEYS = ("cgroup", "cgroups", "resource_control", "fallback", "warning", "note")


def sandbox_notes(grades) -> Counter:
    """What the results say about how their sandbox was limited (e.g. cgroups unavailable: a fallback)."""
    notes: Counter = Counter()
    for g in grades:
        box = (g.result or {}).get("sandbox")
        if not isinstance(box, dict):
            continue
        for key in SANDBOX_NOTE_KEYS:
            value = box.get(key)
            if value not in (None, "", [], {}):
                notes[f"{key}: {value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"[:300]] += 1
    return notes


def _summary(out, conn, grades: list[gradebook.Grade], got: ingest.Ingested, graded: int) -> None:
    from rich.table import Table

    people = gradebook.counted(grades)
    statuses = Counter(g.status for g in people)
    scored = [g.final_score for g in people if g.final_score is not None and g.status not in ("missing",)]
    t = Table(title="batch summary", show_header=False)
    t.add_row("students", str(len(people)))
    t.add_row("graded in this run", str(graded))
    for status, n in sorted(statuses.items()):
        t.add_row(f"  {status}", str(n))
    t.add_row("mean final score", f"{sum(scored) / len(scored):.2f} / {gradebook.max_total():.1f}" if scored else "-")
    t.add_row("files not graded", str(len(got.skipped)))
    if got.ignored:
        t.add_row("macOS metadata / dot-files ignored", str(len(got.ignored)))
    for note, n in sorted(sandbox_notes(people).items()):
        t.add_row("sandbox", f"{note} ({n} notebooks)")
    out.print(t)
    slow = sorted((g for g in people if g.result), key=lambda g: -(g.result.get("duration_s") or 0))[:5]
    if slow:
        s = Table(title="slowest submissions")
        for col in ("student", "file", "status", "seconds"):
            s.add_column(col)
        for g in slow:
            s.add_row(gradebook.label(g), g.filename or "", g.status, f"{g.result.get('duration_s') or 0:.1f}")
        out.print(s)
    rows = gradebook.triage(grades, conn)
    if rows:
        f = Table(title="for a TA to look at")
        for col in ("student", "status", "flags / message", "next step"):
            f.add_column(col, overflow="fold")
        for r in rows:
            f.add_row(r["who"], r["status"], r["what"], r["next"])
        out.print(f)
    if got.skipped:
        k = Table(title="files not graded")
        k.add_column("file", overflow="fold")
        k.add_column("why", overflow="fold")
        for sk in got.skipped:
            k.add_row(sk.name, sk.reason)
        out.print(k)
