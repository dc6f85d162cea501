"""The course secret file: created once, atomically, the same for every process that races to create it."""
import os
import subprocess
import sys
import time

import pytest

from autograder import layout, secret

_READ_SECRET = """
import sys, time
from pathlib import Path
go = Path(sys.argv[1])
deadline = time.monotonic() + 60  # never outlives a killed test for long
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.002)
from autograder import secret
print(secret.course_secret().decode())
"""


def test_processes_creating_the_secret_at_once_all_get_the_same_one(tmp_path):
    for trial in range(3):
        path = tmp_path / f"t{trial}" / ".grader_secret"
        go = tmp_path / f"go{trial}"
        env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_SECRET"}
        env["AUTOGRADER_SECRET_FILE"] = str(path)
        procs = [subprocess.Popen([sys.executable, "-c", _READ_SECRET, str(go)], cwd=layout.ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        time.sleep(1.5)
        go.touch()
        outs = [p.communicate(timeout=60) for p in procs]
        secrets_seen = {out.strip() for out, _ in outs}
        assert len(secrets_seen) == 1 and len(secrets_seen.pop()) == 64, outs
        assert os.listdir(path.parent) == [".grader_secret"]          # no temporary file left behind
        assert path.stat().st_mode & 0o777 == 0o600


def test_without_hard_links_the_secret_is_still_created_once(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_SECRET", raising=False)
    monkeypatch.setattr(layout, "SECRET_FILE", tmp_path / ".grader_secret")

    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")  # vboxsf, exFAT

    monkeypatch.setattr(os, "link", no_links)
    first = secret.course_secret()
    assert len(first) == 64 and secret.course_secret() == first
    assert os.listdir(tmp_path) == [".grader_secret"] and (tmp_path / ".grader_secret").stat().st_mode & 0o777 == 0o600


def test_an_empty_secret_file_is_refused_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_SECRET", raising=False)
    monkeypatch.setattr(layout, "SECRET_FILE", tmp_path / ".grader_secret")
    (tmp_path / ".grader_secret").write_text("")
    monkeypatch.setattr(secret, "EMPTY_WAIT_S", 0.2)
    with pytest.raises(RuntimeError, match="is empty"):
        secret.course_secret()
