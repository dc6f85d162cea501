"""``python -m autograder batch INPUT``: grade a K-LMS submissions zip (or a folder) into the gradebook.

The command line only: parses and checks the options, then calls ``autograder.batch.driver.run_batch``
(what a batch does, resuming, locking and the process-tree hygiene are described there).
"""
from __future__ import annotations

import os


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
    """``--pick STUDENT=ATTACHMENT_ID`` values as ``(student, attachment_id)`` pairs."""
    out = []
    for pick in values:
        who_, _, attachment = pick.partition("=")
        if not who_.strip() or not attachment.strip().isdigit():
            parser_error(f"--pick wants STUDENT=ATTACHMENT_ID (the number the 'for a TA to look at' table "
                         f"shows), got {pick!r}")
        out.append((who_.strip(), attachment.strip()))
    return out


def run(args) -> int:
    from autograder.__main__ import usage_error
    from autograder.batch import driver

    if args.workers < 1:
        usage_error(args, "--workers must be at least 1")
    if args.gpu and not args.scheduler:
        usage_error(args, "--gpu goes with --scheduler (the local pool gives every sandbox the GPUs it sees)")
    picks = _picks(lambda message: usage_error(args, message), args.pick)
    return driver.run_batch(args.input, db=args.db, roster=args.roster, workers=args.workers, force=args.force,
                            picks=picks, by=args.by, scheduler=args.scheduler, gpu=args.gpu,
                            worker_wait=args.worker_wait)
