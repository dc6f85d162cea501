"""``python -m autograder upload``: post final scores and feedback comments to K-LMS
(``autograder.publish.upload``: what is sent, retries, comments edited in place; a dry run unless --apply)."""
from __future__ import annotations

import os
import sys

from autograder.batch import processes
from autograder.publish import klms_csv, upload
from autograder.record import gradebook


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook written by batch")
    parser.add_argument("--course", required=True, help="the K-LMS course id (the number in its URL)")
    parser.add_argument("--assignment-id", "--assignment", dest="assignment_id",
                        help="the K-LMS assignment id (default: from the roster's 'Title (id)' column)")
    parser.add_argument("--url", default=upload.DEFAULT_URL, help=f"the Canvas instance (default: {upload.DEFAULT_URL})")
    parser.add_argument("--apply", action="store_true", help="really change K-LMS (default: a dry run)")
    parser.add_argument("--no-comments", action="store_true", help="post scores only")
    parser.add_argument("--retries", type=int, default=6, help="tries per request (default: 6)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first wait in seconds, doubled each retry")
    parser.add_argument("--timeout", type=float, nargs=2, default=upload.DEFAULT_TIMEOUT, metavar=("CONNECT", "READ"),
                        help="seconds to connect and to wait for an answer, per request (default: 10 60)")
    parser.add_argument("--by", help="who uploads, for the audit log (default: your user name)")


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def run(args) -> int:
    token = os.environ.get(upload.TOKEN_ENV, "").strip()
    if not token:
        _err(f"error: set {upload.TOKEN_ENV} to a K-LMS access token (Account > Settings > New Access Token)")
        return 2
    if not args.apply or not os.path.isfile(args.db):
        return _run(args, token)  # a dry run only reads; a missing gradebook is reported there
    # one writer to K-LMS per gradebook: two TAs' uploads at once would each see no comment and each post one,
    # and an upload during a batch would send half a class's new results
    try:
        lock = processes.lock(args.db)
    except processes.Locked as exc:
        _err(f"error: {exc}")
        return 1
    except OSError as exc:
        _err(f"error: {args.db}: {exc.strerror or exc}")
        return 1
    try:
        return _run(args, token)
    finally:
        os.close(lock)


def _run(args, token: str) -> int:
    try:
        conn = gradebook.connect(args.db, create=False)
    except gradebook.GradebookError as exc:
        _err(f"error: {exc}")
        return 1
    try:  # closed before the caller's lock: closing that descriptor first would drop SQLite's own locks
        return _upload(args, token, conn)
    finally:
        conn.close()


def _upload(args, token: str, conn) -> int:
    by = gradebook.who(args.by)
    try:
        assignment_id = args.assignment_id or gradebook.get_meta(conn, "klms_assignment_id")
        if not assignment_id:
            _err("error: give --assignment-id (the roster given to batch had no single 'Title (id)' column)")
            return 2
        client = upload.Client(args.url, token, args.retries, args.backoff, _err, args.timeout)
        grades = gradebook.grades(conn)
        assignment = upload.open_assignment(client, args.course, assignment_id)
    except (gradebook.GradebookError, upload.UploadError) as exc:
        _err(f"error: {exc}")
        return 1
    warning = upload.points_warning(assignment)
    if warning:
        _err(warning)
    target = upload.Target(client, args.course, assignment_id, assignment, apply=args.apply,
                           comments=not args.no_comments)
    outcome = upload.upload(target, grades, conn, by, print, _err)
    out, err = upload.report_lines(outcome, args.apply)
    print(out[0])
    for line in err:
        _err(line)
    for line in out[1:]:
        print(line)
    for w in klms_csv.warnings_for(grades):
        if "second time" in w:
            _err(f"warning: {w}")
    return 1 if outcome.failed else 0
