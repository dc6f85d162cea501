"""``python -m autograder upload``: post final scores and a feedback comment to K-LMS (Canvas REST API).

    CANVAS_API_TOKEN=... python -m autograder upload --db DB --course ID [--assignment-id ID] [--url URL] [--apply]

A dry run unless ``--apply``: it prints what it would change and changes nothing. For each student with a
Canvas user id and a final score (or an excuse) it reads the submission with its comments
(``GET .../submissions/:user_id?include[]=submission_comments``), then, only where needed, sends one
``PUT .../submissions/:user_id`` with ``submission[posted_grade]`` (or ``submission[excuse]``) and
``comment[text_comment]`` through canvasapi. A student without a score is never sent anything: upload
never clears a grade in K-LMS.

Comments: every comment this tool posts ends with ``MARKER``. When the feedback changed (an override, a
regrade), this tool's latest comment is edited in place (``PUT .../submissions/:user_id/comments/:id``)
instead of a second one being added; an identical comment is never posted again, so a rerun changes
nothing. A comment never holds a TA's override reason: a student sees the score, not why.

Network: every request has a connect and a read timeout (``--timeout``); 429, Canvas's 403 "Rate Limit
Exceeded", 5xx answers, timeouts and connection errors are retried in one place (``Client.retry``) with
exponential backoff and jitter; each retry of an update reads the submission again first, so a PUT that
did reach Canvas before the error is not repeated. Students K-LMS no longer has (404: dropped the course)
are listed at the end and the rest goes on. The token is read from CANVAS_API_TOKEN only and never printed
or logged.
"""
from __future__ import annotations

import math
import random
import re
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlparse

from autograder import assignment
from autograder.config import grader_config as config
from autograder.publish.csvfmt import format_score
from autograder.record import gradebook

DEFAULT_URL = "https://lms.keio.jp"
TOKEN_ENV = "CANVAS_API_TOKEN"
SCORE_TOLERANCE = 0.005     # K-LMS keeps two decimals


class UploadError(Exception):
    not_found = False          # Canvas answered 404 (e.g. a student who dropped the course)


MARKER = f"[autograder {config.ASSIGNMENT}]"


def old_markers() -> tuple[str, ...]:
    """How comments this tool posted before MARKER begin: the feedback's title, or the old summary's."""
    from autograder.publish import feedback
    return (feedback.title(), "Autograder")


DEFAULT_TIMEOUT = (10.0, 60.0)


def comment_for(g: gradebook.Grade) -> str:
    """The plain-text comment a student sees (never a TA's reason), ending with MARKER; "" for none.

    A graded notebook: autograder.publish.feedback.plain_text. Nothing graded: one short line of status."""
    if g.result is None:
        return status_line(g)
    try:
        from autograder.publish import feedback
        text = feedback.plain_text(g.result, ctx=feedback.context_for(g),
                                   max_chars=feedback.MAX_CHARS - len(MARKER) - 2).strip()
    except Exception:  # noqa: BLE001  (a feedback bug must not stop an upload; fall back to the summary)
        text = summary_text(g)
    return f"{text}\n\n{MARKER}"


def status_line(g: gradebook.Grade) -> str:
    """One line for a student whose notebook was not graded but who gets a grade (excused or a TA's score)."""
    ja, en = assignment.current().title
    if g.excused:
        return f"{ja}: 免除 / {en}: excused\n\n{MARKER}"
    if g.final_score is not None:
        return (f"{ja}: TA が採点しました {format_score(g.final_score)} / {format_score(g.max_total)} / "
                f"{en}: scored by the TAs\n\n{MARKER}")
    return ""


def summary_text(g: gradebook.Grade) -> str:
    """A short summary (used when the feedback cannot be rendered); never a TA's reason."""
    lines = [f"Autograder, {g.result['grader_version'] if g.result else ''}".rstrip(", "),
             f"Status: {g.status}" + (f" ({g.message})" if g.message and g.status != "ok" else "")]
    maxes = g.result["questions"] if g.result else {}
    for q, score in g.questions.items():
        top = maxes[q]["max_score"] if q in maxes else None
        lines.append(f"{q}: {format_score(score) or '-'} / {format_score(top) or '-'}")
    lines.append(f"Total: {format_score(g.raw_total) or '-'} / {format_score(g.max_total)}")
    if g.late and g.final_score != g.raw_total:
        lines.append(f"Late: final score {format_score(g.final_score)}")
    if g.overrides:
        lines.append("A TA adjusted this score.")
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


def _timeout_session(timeout):
    import requests

    class TimeoutSession(requests.Session):
        """canvasapi passes no timeout to requests: every request gets ours unless it names one."""

        def request(self, *args, **kwargs):
            kwargs.setdefault("timeout", timeout)
            return super().request(*args, **kwargs)

    return TimeoutSession()


class Client:
    """canvasapi with timeouts and retries; every message it prints has the token scrubbed."""

    def __init__(self, url: str, token: str, retries: int, backoff: float, log, timeout=DEFAULT_TIMEOUT):
        from canvasapi import Canvas

        parsed = urlparse(url)
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise UploadError(f"refusing to send the token to {url}: use https")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # canvasapi warns about http:// (loopback tests)
            self.canvas = Canvas(url, token)
        self.requester = self.canvas._Canvas__requester
        self.requester._session = _timeout_session(tuple(timeout))
        self._token, self.retries, self.backoff, self.log = token, max(1, retries), backoff, log

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def wait(self, attempt: int) -> float:
        """Exponential backoff with jitter (the one place that decides how long to wait)."""
        return self.backoff * 2 ** attempt * (1 + random.random() / 4)

    def retry(self, what: str, fn):
        """``fn(attempt)`` until it returns; retryable failures wait and try again, others raise UploadError."""
        for attempt in range(self.retries):
            try:
                return fn(attempt)
            except UploadError:
                raise
            except Exception as exc:  # noqa: BLE001
                message = self.scrub(f"{type(exc).__name__}: {exc}")
                if not _retryable(exc):
                    error = UploadError(f"{what}: {message}")
                    error.not_found = _not_found(exc)
                    raise error from None
                if attempt == self.retries - 1:
                    raise UploadError(f"{what}: gave up after {self.retries} tries ({message[:200]})") from None
                wait = self.wait(attempt)
                self.log(f"{what}: {message[:120]}; retrying in {wait:.1f} s")
                time.sleep(wait)

    def call(self, what: str, fn, *args, **kwargs):
        return self.retry(what, lambda _attempt: fn(*args, **kwargs))

    def edit_comment(self, course, assignment, user_id, comment_id, text: str) -> None:
        """Canvas's edit-submission-comment endpoint (not wrapped by canvasapi)."""
        self.requester.request(
            "PUT", f"courses/{course}/assignments/{assignment}/submissions/{user_id}/comments/{comment_id}",
            comment=text)


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


def _ours(comment: dict) -> bool:
    text = (comment.get("comment") or "").strip()
    return MARKER in text or text.startswith(old_markers())


def comment_plan(sub, text: str) -> tuple[str, int | None]:
    """("none" | "add" | "edit", the id of our comment to edit)."""
    if not text:
        return "none", None
    comments = list(getattr(sub, "submission_comments", None) or [])
    if any((c.get("comment") or "").strip() == text.strip() for c in comments):
        return "none", None
    ours = [c for c in comments if _ours(c) and c.get("id") is not None]
    if ours:
        return "edit", ours[-1]["id"]
    return "add", None


def _not_found(exc: Exception) -> bool:
    from canvasapi.exceptions import ResourceDoesNotExist
    return isinstance(exc, ResourceDoesNotExist)


# --- one upload: who gets what, one student at a time, and what happened ---------------------------------
@dataclass
class Outcome:
    changed: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)     # no Canvas user id, or no score
    failed: list[str] = field(default_factory=list)      # errors that were not retried away
    dropped: list[str] = field(default_factory=list)     # Canvas answered 404: no longer in the course


@dataclass
class Target:
    """Where an upload goes and how: the course and assignment in K-LMS, and what to do."""

    client: Client
    course: str
    assignment_id: str
    assignment: object                  # canvasapi's Assignment
    apply: bool = False
    comments: bool = True


def open_assignment(client: Client, course: str, assignment_id: str):
    """canvasapi's Assignment (retried like every request)."""
    found = client.call("course", client.canvas.get_course, course)
    return client.call("assignment", found.get_assignment, assignment_id)


def points_warning(assignment) -> str | None:
    """A warning when the K-LMS assignment is worth other points than the autograder's total."""
    points = getattr(assignment, "points_possible", None)
    if points is not None and not math.isclose(float(points), gradebook.max_total()):
        return (f"warning: the K-LMS assignment is worth {points} points, the autograder's total is "
                f"{gradebook.max_total()}; K-LMS shows our points as they are")
    return None


def upload(target: Target, grades: list[gradebook.Grade], conn, by: str, out, err) -> Outcome:
    """Post every student's grade and comment that differ from K-LMS (a dry run unless ``target.apply``);
    ``out`` and ``err`` print."""
    outcome = Outcome()
    for g in grades:
        skip = _skip_reason(g)
        if skip is not None:
            if skip:
                outcome.skipped.append(skip)
            continue
        try:
            result = target.client.retry(f"update {g.user_id}", _rounds(target, g, conn, by, out))
            outcome.changed += result == "changed"
            outcome.unchanged += result == "unchanged"
        except UploadError as exc:
            if exc.not_found:
                outcome.dropped.append(f"{g.user_id} ({g.name})")
                continue
            outcome.failed.append(str(exc))
            err(f"error: {exc}")
    return outcome


def _skip_reason(g: gradebook.Grade) -> str | None:
    """None: send; "": nothing to send, silently (nothing submitted); else why this student is skipped."""
    if not g.exportable:
        return f"{g.student_key} (no Canvas user id)"
    if g.final_score is None and not g.excused:
        return f"{g.student_key} ({g.status}: no score)" if g.status != "missing" else ""
    return None


def _rounds(target: Target, g: gradebook.Grade, conn, by: str, out):
    """``one_round(attempt)`` for ``Client.retry``: read, compare, send what differs; "changed" or
    "unchanged". A retry reads again first, so a PUT that did reach K-LMS is not repeated."""
    text = comment_for(g) if target.comments else ""
    want = "EX" if g.excused else format_score(g.final_score)
    mode = "" if target.apply else "(dry run) would "
    sent: list[bool] = []

    def one_round(attempt: int) -> str:
        sub = target.assignment.get_submission(g.user_id, include=["submission_comments"])
        send_grade = not _grade_matches(sub, g)
        plan, comment_id = comment_plan(sub, text)
        if not send_grade and plan == "none":
            return "changed" if sent else "unchanged"    # an earlier try's PUT did reach K-LMS
        old = "EX" if getattr(sub, "excused", False) else format_score(getattr(sub, "score", None)) or "-"
        what = ([f"grade {old} -> {want}"] if send_grade else []) + (
            ["add comment"] if plan == "add" else ["replace its earlier comment"] if plan == "edit" else [])
        if attempt == 0:
            out(f"{mode}update {g.user_id} ({g.name}): {', '.join(what)}")
        if not target.apply:
            return "changed"
        kwargs = {}
        if send_grade:
            kwargs["submission"] = {"excuse": True} if g.excused else {"posted_grade": want}
        if plan == "add":
            kwargs["comment"] = {"text_comment": text}
        sent.append(True)
        if kwargs:
            sub.edit(**kwargs)
        if plan == "edit":
            target.client.edit_comment(target.course, target.assignment_id, g.user_id, comment_id, text)
        with gradebook.transaction(conn):
            gradebook.audit(conn, by, "upload", g.student_key, course=target.course, assignment=target.assignment_id,
                            grade=want if send_grade else None, comment=plan)
        return "changed"

    return one_round


def report_lines(outcome: Outcome, apply: bool) -> tuple[list[str], list[str]]:
    """What to print after an upload: (lines for stdout, lines for stderr)."""
    verb = "would change" if not apply else "changed"
    out = [f"{verb} {outcome.changed}, already up to date {outcome.unchanged}, skipped {len(outcome.skipped)}, "
           f"not in K-LMS {len(outcome.dropped)}, failed {len(outcome.failed)}"]
    err = [f"skipped: {s}" for s in outcome.skipped]
    if outcome.dropped:
        err.append(f"not in K-LMS (dropped the course?), nothing sent: {', '.join(outcome.dropped)}")
    if outcome.failed:
        err.append(f"{len(outcome.failed)} students failed; run the same command again to retry them (a rerun "
                   "changes nothing that is already done):")
        err += [f"  {f}" for f in outcome.failed]
    if not apply and outcome.changed:
        out.append("nothing was sent: run again with --apply to change K-LMS")
    return out, err
