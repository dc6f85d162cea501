"""Batch grading: a K-LMS submissions zip (or a folder of notebooks) into the SQLite gradebook.

``run_batch(input, db=..., roster=..., workers=...)`` is the library function; ``python -m autograder batch``
(``autograder.commands.batch``) is the command-line layer over it.

INPUT is Canvas's "Download Submissions" zip or a folder of notebooks. Each student's notebook is chosen
(``autograder.ingest.submissions``), graded by ``autograder.grade.grade_notebook`` through an executor
(``autograder.batch.executors``: a pool of worker processes on this machine, or with ``scheduler`` a Dask
cluster whose workers get each notebook as bytes; each grade runs the notebook in its own sandbox child),
and every finished result is written by this process alone to the SQLite gradebook, each in its own
transaction (``autograder.record.gradebook``).

Resumable: a notebook whose sha256 already has a result from this grader_version is not graded again
(``force`` regrades); results with status ``sandbox_error`` are retried. Killing the batch at any moment,
``kill -9`` included, loses only the results in flight, and the next run grades exactly those.

One batch at a time per gradebook: a batch holds an exclusive ``flock`` on the gradebook file, and marks
runs that an earlier, killed batch left ``running`` as ``interrupted``.

No local grading process outlives the batch: each worker asks the kernel for SIGTERM when the batch dies
(``prctl(PR_SET_PDEATHSIG)``), also watches its parent pid, and then kills its whole process subtree
(the sandbox children) before it exits; the batch kills its own subtree on Ctrl-C / SIGTERM
(``autograder.batch.processes``). On a Dask cluster Ctrl-C / SIGTERM cancels every outstanding task (a
worker kills the sandbox of a cancelled task).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

from autograder.batch import processes
from autograder.batch.executors import DaskCluster, ExecutorError, LocalPool, failed_result
from autograder.batch.processes import kill_tree, remove_stale_workdirs
from autograder.ingest import roster as roster_mod
from autograder.ingest import submissions as ingest
from autograder.record import gradebook
from autograder.result import number


def _consoles():
    from rich.console import Console

    return Console(), Console(stderr=True, soft_wrap=True, markup=False, highlight=False)


def run_batch(input, *, db="gradebook.db", roster=None, workers: int | None = None, force: bool = False,
              picks=(), by: str | None = None, scheduler: str | None = None, gpu: bool = False,
              worker_wait: float = 120, out=None, err=None) -> int:
    """Grade ``input`` (a K-LMS submissions zip or a folder of notebooks) into the gradebook ``db``; returns
    the exit status (0 done, 1 an error it printed, 130 interrupted).

    ``roster``: the K-LMS gradebook CSV (lists every student); ``workers``: local grading processes (default:
    the number of CPUs); ``force``: regrade notebooks already graded; ``picks``: ``(student, attachment_id)``
    pairs, the notebook to grade of a student who attached several (kept in the gradebook); ``by``: who runs
    the batch, for the audit log (default: the user name); ``scheduler``: grade on this Dask cluster instead
    (``tcp://HOST:8786``), ``gpu`` then asks for one unit of the workers' GPU resource per notebook, and
    ``worker_wait`` seconds is how long to wait for a worker. ``out`` / ``err``: rich Consoles for the
    summary and for progress and errors (default: stdout / stderr)."""
    if out is None or err is None:
        default_out, default_err = _consoles()
        out, err = out or default_out, err or default_err
    workers = (os.cpu_count() or 1) if workers is None else workers
    by = gradebook.who(by)
    # everything that can fail before grading fails before the gradebook is created
    if not Path(input).exists():
        err.print(f"error: {input}: no such file or folder")
        return 1
    if scheduler is None:  # the workers here share the data: verified and written once, before they start
        from autograder import grade
        from autograder.data import mnist
        try:
            grade.prepare_data()
        except mnist.MnistError as exc:
            err.print(f"error: {exc}")
            return 1
    roster_full = None
    try:
        if roster:
            roster_full = roster_mod.read_roster_full(roster)
        conn = gradebook.connect(db)
    except (roster_mod.RosterError, gradebook.GradebookError, OSError) as exc:
        err.print(f"error: {exc}")
        return 1
    try:
        lock = processes.lock(db)
    except processes.Locked as exc:
        conn.close()
        err.print(f"error: {exc}")
        return 1
    try:
        if roster_full is not None:
            for w in roster_full.warnings:
                err.print(f"warning: {w}")
            gradebook.load_roster(conn, roster_full.rows, by)
            if len(roster_full.assignments) == 1:
                title, aid = roster_full.assignments[0]
                gradebook.set_meta(conn, "klms_assignment_id", aid)
                gradebook.set_meta(conn, "klms_title", title)
        return _run_locked(input, conn, by, out, err, list(picks), force=force, workers=workers,
                           scheduler=scheduler, gpu=gpu, worker_wait=worker_wait)
    finally:
        conn.close()
        os.close(lock)


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


def _run_locked(input, conn, by: str, out, err, picks: list[tuple[str, str]] = (), *, force: bool = False,
                workers: int = 1, scheduler: str | None = None, gpu: bool = False, worker_wait: float = 120) -> int:
    from autograder.grade import grader_version
    version = grader_version()
    for path in remove_stale_workdirs():
        err.print(f"removed {path}, left behind by an earlier batch that was killed", soft_wrap=True)
    workdir = Path(processes.new_workdir())
    batch_id = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, _raise_interrupt)
    try:
        try:
            got = ingest.ingest(input, workdir, gradebook.roster_names(conn))
            for key, attachment in _check_picks(conn, got, list(picks)):
                gradebook.set_pick(conn, key, attachment, by)
        except (ingest.IngestError, gradebook.GradebookError, OSError) as exc:
            err.print(f"error: {exc}")
            return 1
        stale = gradebook.mark_interrupted(conn, by)
        if stale:
            err.print(f"an earlier batch stopped part-way ({stale} run); its finished results are kept", soft_wrap=True)
        # the absolute path: report finds the notebooks again from whatever folder it is run in
        batch_id = gradebook.begin_batch(conn, input=str(Path(input).resolve()),
                                         input_sha256=got.input_sha256,
                                         grader_version=version, by=by,
                                         workers=None if scheduler else workers, scheduler=scheduler)
        students = ingest.choose(got, gradebook.picks(conn))
        todo = _record_ingest(conn, batch_id, got, students)
        todo = {sha: path for sha, path in todo.items() if force or not gradebook.has_result(conn, sha, version)}
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
            executor = make_executor(version, err, workers=workers, scheduler=scheduler, gpu=gpu,
                                     worker_wait=worker_wait)
            graded = _grade_all(conn, todo, version, batch_id, by, executor, err, whose)
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


def _as_expected(sha: str, version: str, result) -> dict:
    """The result, or a grader error (``sandbox_error``: graded again by the next batch) when it is not what
    the batch asked for: graded by other grader files than the batch's (a ``git pull`` or ``build`` while it
    ran; a worker that restarted loads them anew) or from other bytes than the batch read (the input folder
    changed under it). Such a result would be stored as this notebook's result by this batch's grader. The
    executor's own results (``failed_result``: a dead worker, a notebook that kept killing its workers) carry
    neither and stand."""
    if not isinstance(result, dict):
        return failed_result(f"grader error: the grader returned {type(result).__name__}")
    graded_by, graded_sha = result.get("grader_version"), result.get("submission_sha256")
    if graded_by not in (None, version):
        why = (f"the grader's files changed while this batch ran: this notebook was graded by grader {graded_by}, "
               f"the batch is grader {version}")
    elif graded_sha is None and graded_by is not None and result.get("status") != "sandbox_error":
        why = "the notebook's file could not be matched to what the batch read (its size or bytes changed)"
    elif graded_sha not in (None, sha):
        why = (f"the notebook's file changed after the batch read it (sha256 {str(graded_sha)[:12]} graded, "
               f"{sha[:12]} read)")
    else:
        return result
    return failed_result(f"{why}; run the batch again", result.get("duration_s") or 0.0)


def make_executor(version: str, err, *, workers: int = 1, scheduler: str | None = None, gpu: bool = False,
                  worker_wait: float = 120):
    """The local process pool of ``workers`` processes, or the Dask cluster at ``scheduler``."""
    if scheduler:
        return DaskCluster(scheduler, version, err, gpu=gpu, worker_wait=worker_wait,
                           connect_timeout=min(30.0, worker_wait))
    return LocalPool(workers, err)


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
            result = _as_expected(sha, version, result)
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
                          f"{number(result.get('total')) or 0:g}/{gradebook.max_total():g} "
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
