"""``python -m autograder override``: record a TA's decision about a student's score.

    override --db DB STUDENT SCORE --reason TEXT            the whole assignment's final score
    override --db DB STUDENT QUESTION SCORE --reason TEXT   one question's score (late policy still applies)
    override --db DB STUDENT --excuse --reason TEXT         excused: exported to K-LMS as EX
    override --db DB STUDENT [QUESTION] --clear --reason TEXT   withdraw the override in force

STUDENT is a Canvas user id, SIS user id, SIS login id, ``anon_<id>`` or the exact roster name.
Overrides live in their own table, so they survive re-batching and regrading; every one is logged with who
(``--by`` or your user name), when and why in the audit table. The reason is private to the staff: the
questions CSV and the report show it; upload comments, feedback files and the K-LMS CSV never do.
"""
from __future__ import annotations

import sys

from autograder.record import gradebook


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook written by batch")
    parser.add_argument("student", help="Canvas user id, SIS user id, SIS login id, anon_<id> or name")
    parser.add_argument("rest", nargs="*", metavar="[QUESTION] SCORE",
                        help="optional question id, then the score")
    parser.add_argument("--reason", required=True, help="why: kept in the audit log and shown in staff files (the "
                        "questions CSV, the report), never in anything a student sees")
    parser.add_argument("--excuse", action="store_true", help="excuse the student (K-LMS 'EX')")
    parser.add_argument("--clear", action="store_true", help="withdraw the override in force")
    parser.add_argument("--by", help="who decides (default: your user name)")


def run(args) -> int:
    rest = list(args.rest)
    question = None
    score = None
    from autograder.__main__ import usage_error

    def usage(message: str):
        usage_error(args, message)
    if args.excuse or args.clear:
        if len(rest) > 1 or (args.excuse and args.clear):
            usage("--excuse and --clear take STUDENT [QUESTION] and no score")
        question = rest[0] if rest else None
    else:
        if len(rest) not in (1, 2):
            usage("give STUDENT [QUESTION] SCORE, or --excuse, or --clear")
        if len(rest) == 2:
            question = rest[0]
        try:
            score = float(rest[-1])
        except ValueError:
            usage(f"score {rest[-1]!r} is not a number")
    if not args.reason.strip():
        usage("--reason must say why")
    try:
        conn = gradebook.connect(args.db, create=False)
        key = gradebook.resolve_student(conn, args.student)
        gradebook.add_override(conn, key, question=question, score=score, excused=args.excuse,
                               reason=args.reason.strip(), by=gradebook.who(args.by), clear=args.clear)
    except gradebook.GradebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    g = next(g for g in gradebook.grades(conn) if g.student_key == key)
    what = "cleared" if args.clear else "excused" if args.excuse else f"{question or 'total'} = {score}"
    final = "EX" if g.excused else ("-" if g.final_score is None else f"{g.final_score}")
    print(f"{key} ({g.name}): {what}; final score now {final}")
    return 0
