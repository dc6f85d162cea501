"""``python -m autograder upload``: post final scores and a feedback comment to K-LMS (Canvas REST API).

    CANVAS_API_TOKEN=... python -m autograder upload --db DB --course ID --assignment ID [--url URL] [--apply]

A dry run unless ``--apply``: it prints what it would change and changes nothing. For each student with a
Canvas user id and a final score (or an excuse) it reads the submission with its comments
(``GET .../submissions/:user_id?include[]=submission_comments``), then, only where needed, sends one
``PUT .../submissions/:user_id`` with ``submission[posted_grade]`` (or ``submission[excuse]``) and
``comment[text_comment]`` through canvasapi. A grade already equal is not sent again, a comment already
there is never posted twice, so a rerun changes nothing. 429, Canvas's 403 "Rate Limit Exceeded" and 5xx
answers are retried with exponential backoff; before each retry the submission is read again, so a PUT
that did reach Canvas before the error is not repeated. The token is read from CANVAS_API_TOKEN only and
never printed or logged.
"""
from __future__ import annotations

import math
import os
import random
import re
import sys
import time
import warnings
from urllib.parse import urlparse

from . import gradebook
from .canvas.csvfmt import format_score

DEFAULT_URL = "https://lms.keio.jp"
TOKEN_ENV = "CANVAS_API_TOKEN"
SCORE_TOLERANCE = 0.005     # K-LMS keeps two decimals


class UploadError(Exception):
    pass


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, help="the gradebook written by batch")
    parser.add_argument("--course", required=True, help="the K-LMS course id (the number in its URL)")
    parser.add_argument("--assignment", required=True, help="the K-LMS assignment id")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the Canvas instance (default: {DEFAULT_URL})")
    parser.add_argument("--apply", action="store_true", help="really change K-LMS (default: a dry run)")
    parser.add_argument("--no-comments", action="store_true", help="post scores only")
    parser.add_argument("--retries", type=int, default=6, help="tries per request on 429/5xx (default: 6)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first wait in seconds, doubled each retry")
    parser.add_argument("--by", help="who uploads, for the audit log (default: your user name)")


def comment_for(g: gradebook.Grade) -> str:
    """The plain-text comment: autograder.feedback.plain_text when that exists, else a short summary."""
    try:
        from . import feedback
        plain = getattr(feedback, "plain_text", None)
        context_for = getattr(feedback, "context_for", None)
    except ImportError:
        plain = context_for = None
    if plain is not None and g.result is not None:
        try:
            return (plain(g.result, ctx=context_for(g)) if context_for else plain(g.result)).strip()
        except Exception:  # noqa: BLE001  (a feedback bug must not stop an upload; fall back to the summary)
            pass
    return summary_text(g)


def summary_text(g: gradebook.Grade) -> str:
    lines = [f"Autograder, {g.result.get('grader_version', '') if g.result else ''}".rstrip(", "),
             f"Status: {g.status}" + (f" ({g.message})" if g.message and g.status != "ok" else "")]
    maxes = (g.result or {}).get("questions", {})
    for q, score in g.questions.items():
        top = (maxes.get(q) or {}).get("max_score")
        lines.append(f"{q}: {format_score(score) or '-'} / {format_score(top) or '-'}")
    lines.append(f"Total: {format_score(g.raw_total) or '-'} / {format_score(g.max_total)}")
    if g.late and g.final_score != g.raw_total:
        lines.append(f"Late: final score {format_score(g.final_score)}")
    if g.overrides:
        lines.append("A TA adjusted this score: " + "; ".join(o["reason"] for o in g.overrides))
    return "\n".join(lines)


def _retryable(exc: Exception) -> bool:
    from canvasapi.exceptions import CanvasException, Forbidden, RateLimitExceeded
    import requests

    if isinstance(exc, (RateLimitExceeded, requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, Forbidden):
        return "rate limit exceeded" in str(exc).lower()
    if type(exc) is CanvasException:
        return bool(re.search(r"status code 5\d\d", str(exc)))
    return False


class Client:
    """canvasapi with retries; every message it prints has the token scrubbed."""

    def __init__(self, url: str, token: str, retries: int, backoff: float, log):
        from canvasapi import Canvas

        parsed = urlparse(url)
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise UploadError(f"refusing to send the token to {url}: use https")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # canvasapi warns about http:// (loopback tests)
            self.canvas = Canvas(url, token)
        self._token, self.retries, self.backoff, self.log = token, max(1, retries), backoff, log

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def call(self, what: str, fn, *args, **kwargs):
        for attempt in range(self.retries):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                if not _retryable(exc) or attempt == self.retries - 1:
                    raise UploadError(f"{what}: {self.scrub(type(exc).__name__ + ': ' + str(exc))}") from None
                wait = self.backoff * 2 ** attempt * (1 + random.random() / 4)
                self.log(f"{what}: {self.scrub(str(exc))[:120]}; retrying in {wait:.1f} s")
                time.sleep(wait)


def _grade_matches(sub, g: gradebook.Grade) -> bool:
    if g.excused:
        return bool(getattr(sub, "excused", False))
    # entered_score is the grade as posted, before a late policy set in K-LMS deducts from it
    score = getattr(sub, "entered_score", None)
    if score is None:
        score = getattr(sub, "score", None)
    if getattr(sub, "excused", False) or score is None:
        return False
    return math.isclose(float(score), g.final_score, abs_tol=SCORE_TOLERANCE)


def _has_comment(sub, text: str) -> bool:
    return any((c.get("comment") or "").strip() == text for c in getattr(sub, "submission_comments", None) or [])


def run(args) -> int:
    out = print

    def err(msg: str) -> None:
        print(msg, file=sys.stderr)

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        err(f"error: set {TOKEN_ENV} to a K-LMS access token (Account > Settings > New Access Token)")
        return 2
    by = gradebook.who(args.by)
    try:
        conn = gradebook.connect(args.db, create=False)
        client = Client(args.url, token, args.retries, args.backoff, err)
        grades = gradebook.grades(conn)
        course = client.call("course", client.canvas.get_course, args.course)
        assignment = client.call("assignment", course.get_assignment, args.assignment)
    except (gradebook.GradebookError, UploadError) as exc:
        err(f"error: {exc}")
        return 1
    points = getattr(assignment, "points_possible", None)
    if points is not None and not math.isclose(float(points), gradebook.max_total()):
        err(f"warning: the K-LMS assignment is worth {points} points, the autograder's total is "
            f"{gradebook.max_total()}; K-LMS shows our points as they are")
    mode = "" if args.apply else "(dry run) would "
    changed = unchanged = 0
    skipped: list[str] = []
    failed: list[str] = []
    for g in grades:
        if not g.exportable:
            skipped.append(f"{g.student_key} (no Canvas user id)")
            continue
        if g.final_score is None and not g.excused:
            if g.status != "missing":
                skipped.append(f"{g.student_key} ({g.status}: no score)")
            continue
        text = "" if args.no_comments else comment_for(g)
        want = "EX" if g.excused else format_score(g.final_score)
        try:
            for attempt in range(client.retries):
                sub = client.call(f"read {g.user_id}", assignment.get_submission, g.user_id,
                                  include=["submission_comments"])
                send_grade = not _grade_matches(sub, g)
                send_comment = bool(text) and not _has_comment(sub, text)
                if not (send_grade or send_comment):
                    unchanged += attempt == 0
                    changed += attempt > 0
                    break
                old = "EX" if getattr(sub, "excused", False) else format_score(getattr(sub, "score", None)) or "-"
                what = ([f"grade {old} -> {want}"] if send_grade else []) + (["add comment"] if send_comment else [])
                if attempt == 0:
                    out(f"{mode}update {g.user_id} ({g.name}): {', '.join(what)}")
                if not args.apply:
                    changed += 1
                    break
                kwargs = {}
                if send_grade:
                    kwargs["submission"] = {"excuse": True} if g.excused else {"posted_grade": want}
                if send_comment:
                    kwargs["comment"] = {"text_comment": text}
                try:
                    # one try: after a retryable failure the submission is read again first, since the
                    # PUT may have reached Canvas before the error
                    sub.edit(**kwargs)
                except Exception as exc:  # noqa: BLE001
                    message = client.scrub(f"{type(exc).__name__}: {exc}")
                    if not _retryable(exc):
                        raise UploadError(f"update {g.user_id}: {message}") from None
                    wait = client.backoff * 2 ** attempt
                    err(f"update {g.user_id}: {message[:120]}; reading it again in {wait:.1f} s")
                    time.sleep(wait)
                    continue
                with gradebook.transaction(conn):
                    gradebook.audit(conn, by, "upload", g.student_key, course=args.course,
                                    assignment=args.assignment, grade=want if send_grade else None,
                                    comment=send_comment)
                changed += 1
                break
            else:
                raise UploadError(f"update {g.user_id}: gave up after {client.retries} tries")
        except UploadError as exc:
            failed.append(str(exc))
            err(f"error: {exc}")
    verb = "would change" if not args.apply else "changed"
    out(f"{verb} {changed}, already up to date {unchanged}, skipped {len(skipped)}, failed {len(failed)}")
    for s in skipped:
        err(f"skipped: {s}")
    if not args.apply and changed:
        out("nothing was sent: run again with --apply to change K-LMS")
    from .export import warnings_for
    for w in warnings_for(grades):
        if "second time" in w:
            err(f"warning: {w}")
    return 1 if failed else 0

