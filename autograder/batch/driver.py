"""``python -m autograder batch INPUT``: grade a K-LMS submissions zip (or a folder) into the gradebook.

INPUT is Canvas's "Download Submissions" zip or a folder of notebooks. Each student's notebook is chosen
(``autograder.ingest.submissions``), graded by ``autograder.grade.grade_notebook`` through an executor
(``autograder.batch.executors``: a pool of worker processes on this machine, or with ``--scheduler`` a Dask
cluster whose workers get each notebook as bytes; each grade runs the notebook in its own sandbox child),
and every finished result is written by this process alone to the SQLite gradebook, each in its own
transaction (``autograder.record.gradebook``).

Resumable: a notebook whose sha256 already has a result from this grader_version is not graded again
(``--force`` regrades); results with status ``sandbox_error`` are retried. Killing the batch at any moment,
``kill -9`` included, loses only the results in flight, and the next run grades exactly those.

One batch at a time per gradebook: a batch holds an exclusive ``flock`` on the gradebook file, and marks
runs that an earlier, killed batch left ``running`` as ``interrupted``.

No local grading process outlives the batch: each worker asks the kernel for SIGTERM when the batch dies
(``prctl(PR_SET_PDEATHSIG)``), also watches its parent pid, and then kills its whole process subtree
(the sandbox children) before it exits; the batch kills its own subtree on Ctrl-C / SIGTERM. On a Dask
cluster Ctrl-C / SIGTERM cancels every outstanding task (a worker kills the sandbox of a cancelled task).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from autograder.record import gradebook
from autograder.ingest import submissions as ingest
from autograder.ingest import roster as roster_mod

# the pool and the process-tree hygiene live in autograder.batch.executors (kept importable from here)
from autograder.batch.executors import (MAX_POOL_RESTARTS, PR_SET_PDEATHSIG, DaskCluster, ExecutorError, LocalPool,  # noqa: F401
                        _die_with_children, _grade_one, _init_worker, descendants, failed_result, kill_tree,
                        kill_tree_of_pool)


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
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="grade on this Dask cluster instead of local processes (workers: dask worker "
                             "tcp://HOST:8786 --nthreads 1 --preload autograder.batch.dask_worker; README, Scale out)")
    parser.add_argument("--gpu", action="store_true",
                        help="with --scheduler: each notebook asks for one unit of the workers' GPU resource "
                             "(workers started with --resources GPU=k)")
    parser.add_argument("--worker-wait", type=float, default=120, metavar="SECONDS",
                        help="with --scheduler: how long to wait for a first worker (default: 120; "
                             "also caps the wait for the scheduler, 30 s)")


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

    from autograder.__main__ import usage_error

    out, err = Console(), Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
    by = gradebook.who(args.by)
    if args.workers < 1:
        usage_error(args, "--workers must be at least 1")
    if args.gpu and not args.scheduler:
        usage_error(args, "--gpu goes with --scheduler (the local pool gives every sandbox the GPUs it sees)")
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
    from autograder.grade import grader_version
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
        whose: dict[str, list[str]] = {}           # for the progress lines: names and ids
        roster_names = gradebook.roster_names(conn)
        for s in students.values():
            if s.chosen is not None:
                name = roster_names.get(s.key)
                whose.setdefault(s.chosen.sha256, []).append(f"{name} ({s.key})" if name else s.key)
        try:
            graded = _grade_all(conn, todo, version, batch_id, by, make_executor(args, version, err), err, whose)
        except ExecutorError as exc:
            err.print(f"error: {exc}", soft_wrap=True)
            gradebook.refresh_grades(conn)       # what was recorded before the executor gave up counts
            gradebook.end_batch(conn, batch_id, "interrupted", by)
            return 1
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


def make_executor(args, version: str, err):
    """The local process pool, or the Dask cluster at ``--scheduler``."""
    if getattr(args, "scheduler", None):
        wait = getattr(args, "worker_wait", 120)
        return DaskCluster(args.scheduler, version, err, gpu=getattr(args, "gpu", False),
                           worker_wait=wait, connect_timeout=min(30.0, wait))
    return LocalPool(args.workers, err)


def _grade_all(conn, todo: dict[str, Path], version: str, batch_id: int, by: str, workers, err,
               whose: dict[str, list[str]] | None = None) -> int:
    """Grade ``todo`` with ``workers`` (an executor, or a number of local processes) and record each result
    as it comes back. Returns how many were recorded."""
    import contextlib

    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    if not todo:
        return 0
    executor = LocalPool(workers, err) if isinstance(workers, int) else workers
    whose = whose or {}
    counts: Counter[str] = Counter()
    pending = dict(sorted(todo.items(), key=lambda kv: kv[1].name))
    done = 0
    total = len(todo)
    plain = not err.is_terminal      # under nohup or into a log: one line per finished submission
    started = time.monotonic()
    columns = (TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[counts]}"))
    with Progress(*columns, console=err, transient=False, disable=plain) as progress, \
            contextlib.closing(executor.grade(pending)) as results:
        task = progress.add_task("grading", total=total, counts="")
        for sha, result in results:
            if not isinstance(result, dict):
                result = failed_result(f"grader error: the grader returned {type(result).__name__}")
            result = record_safely(conn, sha, version, result, batch_id, by, err)
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
    return done


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
