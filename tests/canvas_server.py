"""A small stand-in for the Canvas REST endpoints that ``autograder upload`` uses (loopback only).

    GET  /api/v1/courses/:course_id
    GET  /api/v1/courses/:course_id/assignments/:assignment_id
    GET  /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id[?include[]=submission_comments]
    PUT  /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id
         form fields submission[posted_grade], submission[excuse], comment[text_comment]
    PUT  /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id/comments/:id
         form field comment (Canvas's edit-submission-comment endpoint)

As Canvas does: ``Authorization: Bearer <token>`` or 401 with ``WWW-Authenticate``; ``:user_id`` may be
``sis_user_id:X`` or ``sis_login_id:X``; comments only with ``include[]=submission_comments``; a posted
grade sets ``entered_score`` and, for a late submission under the course's late policy, a lower ``score``.
``fail_next`` holds status codes answered (once each, in order) before any real work, ``fail_after_put``
codes answered after a PUT took effect (a gateway timeout): for retry tests. ``stall_next`` holds
seconds to wait (once each) before answering a request, ``stall_all`` a wait before every answer (a stalled
K-LMS); waits end early when the server stops (bounded, never past ``MAX_STALL_S``).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Student:
    user_id: int
    sis_user_id: str = ""
    sis_login_id: str = ""
    late: bool = False


@dataclass
class FakeCanvas:
    token: str
    course_id: int
    assignment_id: int
    students: list[Student]
    points_possible: float = 80.0
    late_deduction: float = 0.0                 # K-LMS's own late policy (fraction of the entered score)
    fail_next: list[int] = field(default_factory=list)
    fail_after_put: list[int] = field(default_factory=list)   # PUT applied, then this error answered
    stall_next: list[float] = field(default_factory=list)
    stall_all: float = 0.0
    requests: list[dict] = field(default_factory=list)

    MAX_STALL_S = 30.0

    def __post_init__(self):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.subs = {s.user_id: {"id": 90000 + s.user_id, "user_id": s.user_id, "assignment_id": self.assignment_id,
                                 "score": None, "grade": None, "entered_score": None, "entered_grade": None,
                                 "excused": False, "late": s.late, "workflow_state": "submitted",
                                 "submission_type": "online_upload", "submission_comments": []}
                     for s in self.students}
        self._by_sis = {("sis_user_id", s.sis_user_id): s.user_id for s in self.students} | \
                       {("sis_login_id", s.sis_login_id): s.user_id for s in self.students}
        self._next_comment = 1

    # --- server -----------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):       # quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_PUT(self):
                fake._handle(self, "PUT")

            def do_POST(self):
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    # --- requests ---------------------------------------------------------------------------------
    def _reply(self, h, status: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h, method: str) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        form = {}
        if method in ("PUT", "POST"):
            length = int(h.headers.get("Content-Length") or 0)
            form = parse_qs(h.rfile.read(length).decode("utf-8"), keep_blank_values=True)
        with self.lock:
            stall = self.stall_next.pop(0) if self.stall_next else self.stall_all
        if stall:
            self.stopping.wait(min(stall, self.MAX_STALL_S))    # outside the lock: other requests go on
            if self.stopping.is_set():
                return
        with self.lock:
            self.requests.append({"method": method, "path": url.path, "query": query, "form": form})
            if h.headers.get("Authorization") != f"Bearer {self.token}":
                return self._reply(h, 401, {"errors": [{"message": "Invalid access token."}]},
                                   {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
            if self.fail_next:
                code = self.fail_next.pop(0)
                if code == 429:
                    return self._reply(h, 429, b"429 Too Many Requests (Rate Limit Exceeded)",
                                       {"X-Rate-Limit-Remaining": "0", "Retry-After": "0"})
                return self._reply(h, code, {"errors": [{"message": "An error occurred."}]})
            return self._route(h, method, url.path, query, form)

    def _route(self, h, method, path, query, form):
        m = re.fullmatch(r"/api/v1/courses/(\d+)(?:/assignments/(\d+)(?:/submissions/([^/]+)"
                         r"(?:/comments/(\d+))?)?)?", path)
        if not m or int(m[1]) != self.course_id:
            return self._reply(h, 404, {"errors": [{"message": "The specified resource does not exist."}]})
        if m[2] is None and method == "GET":
            return self._reply(h, 200, {"id": self.course_id, "name": "機械学習基礎", "course_code": "ML-Basics"})
        if int(m[2] or 0) != self.assignment_id:
            return self._reply(h, 404, {"errors": [{"message": "The specified resource does not exist."}]})
        if m[3] is None and method == "GET":
            return self._reply(h, 200, {"id": self.assignment_id, "course_id": self.course_id,
                                        "name": "Lecture 3 assignment", "points_possible": self.points_possible})
        uid = self._user(m[3])
        if uid is None:
            return self._reply(h, 404, {"errors": [{"message": "The specified resource does not exist."}]})
        sub = self.subs[uid]
        if m[4] is not None:
            if method != "PUT":
                return self._reply(h, 405, {"errors": [{"message": "method not allowed"}]})
            found = [c for c in sub["submission_comments"] if c["id"] == int(m[4])]
            if not found:
                return self._reply(h, 404, {"errors": [{"message": "The specified resource does not exist."}]})
            found[0].update(comment=form.get("comment", [""])[0], edited_at="2026-05-02T09:00:00Z")
            return self._reply(h, 200, found[0])
        if method == "PUT":
            self._update(sub, form)
            if self.fail_after_put:
                return self._reply(h, self.fail_after_put.pop(0), {"errors": [{"message": "Gateway timeout"}]})
        elif method != "GET":
            return self._reply(h, 405, {"errors": [{"message": "method not allowed"}]})
        body = dict(sub)
        if "submission_comments" not in query.get("include[]", []) and method == "GET":
            body.pop("submission_comments")
        return self._reply(h, 200, body)

    def _user(self, ident: str) -> int | None:
        if ident.isdigit():
            return int(ident) if int(ident) in self.subs else None
        kind, _, value = ident.partition(":")
        return self._by_sis.get((kind, value))

    def _update(self, sub: dict, form: dict) -> None:
        if form.get("submission[excuse]", [""])[0] in ("true", "1"):
            sub.update(excused=True, score=None, grade=None, entered_score=None, entered_grade=None)
        if "submission[posted_grade]" in form:
            entered = float(form["submission[posted_grade]"][0])
            score = round(entered * (1 - self.late_deduction), 2) if sub["late"] else entered
            sub.update(excused=False, entered_score=entered, entered_grade=str(entered), score=score,
                       grade=str(score), workflow_state="graded")
        if "comment[text_comment]" in form:
            sub["submission_comments"].append({"id": self._next_comment, "author_id": 1, "author_name": "TA",
                                               "comment": form["comment[text_comment]"][0],
                                               "created_at": "2026-05-01T09:00:00Z"})
            self._next_comment += 1

    # --- for assertions ---------------------------------------------------------------------------
    def puts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "PUT"]
