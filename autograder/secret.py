"""The course secret and the per-submission seed for hidden inputs.

The seed is HMAC-SHA256(secret, sha256 of the submission): students cannot predict it, a regrade of the
same file gets the same inputs. The secret comes from AUTOGRADER_SECRET or an untracked file (created on
first use, mode 0600; git-ignored), never from the repository.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from autograder import layout


def course_secret() -> bytes:
    env = os.environ.get("AUTOGRADER_SECRET")
    if env:
        return env.encode("utf-8")
    path = layout.SECRET_FILE
    if not path.exists():  # create atomically: parallel workers must all end up with the same secret
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode("utf-8")


def hidden_seed(submission_sha256: str) -> int:
    digest = hmac.new(course_secret(), submission_sha256.encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1
