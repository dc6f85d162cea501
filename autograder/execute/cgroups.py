"""One control group per sandbox: its share of the CPU, one memory limit and one task limit for all its
processes together (tmpfs pages included), whatever uid or session they run in.

cgroup v2 where its cpu, memory and pids controllers are available (a unified hierarchy); v1 otherwise
(one directory per controller, as on this project's build machine). The sandbox's group is created under
the grading process's own group in each hierarchy (where a container's delegation lets us write), or at
the hierarchy's root. The parent puts the jail's pid in it before the jail reads its configuration, so
every process of the sandbox starts inside; ``remove`` waits for the group to empty (ending what is left)
and deletes it.

Where no group can be created (not root, no delegation, no controllers), ``Cgroup.create`` raises
``CgroupsUnavailable`` and the sandbox runs under its per-process rlimits alone; ``status`` says why.
"""
from __future__ import annotations

import errno
import functools
import os
import secrets
import signal
import time
from pathlib import Path

CONTROLLERS = ("cpu", "memory", "pids")
PREFIX = "autograder-sandbox-"
PERIOD_US = 100_000


class CgroupsUnavailable(OSError):
    """No cgroup for the sandbox here (the reason is the message)."""


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside the hierarchy, fstype, options) of every cgroup mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(rfields[2].split(",")) | set(fields[5].split(",") if len(fields) > 5 else ())
        out.append((fields[4], fields[3], rfields[0], options))
    return out


def _own_paths() -> dict[str, str]:
    """controller -> this process's group path in that hierarchy ("" for the v2 hierarchy)."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2]
    return paths


def _base(mount: str, mount_root: str, own: str | None) -> Path:
    """Where to create a group: under our own group when it is visible and writable, else the mount's root."""
    if own:
        rel = os.path.relpath(own, mount_root) if own.startswith(mount_root) else None
        if rel is not None:
            candidate = Path(mount) / ("" if rel == "." else rel)
            if candidate.is_dir() and os.access(candidate, os.W_OK):
                return candidate
    return Path(mount)


def _write(path: Path, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _layout() -> tuple[int, dict[str, Path]]:
    """(version, controller -> base directory) of the hierarchies to use; raises CgroupsUnavailable."""
    mounts = _mounts()
    own = _own_paths()
    for mount, root, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        available = set(_read(Path(mount) / "cgroup.controllers").split())
        if set(CONTROLLERS) <= available:
            base = _base(mount, root, own.get(""))
            return 2, {c: base for c in CONTROLLERS}
    bases = {}
    for controller in CONTROLLERS:
        hit = [(m, r) for m, r, fstype, opts in mounts if fstype == "cgroup" and controller in opts]
        if not hit:
            raise CgroupsUnavailable(errno.ENOENT, f"no cgroup hierarchy with the {controller} controller")
        mount, root = hit[0]
        bases[controller] = _base(mount, root, own.get(controller))
    return 1, bases


class Cgroup:
    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version, self.dirs = version, dirs

    # -- life cycle -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, limits: dict) -> "Cgroup":
        """A new, empty group with the sandbox's limits (``cpu_cores``, ``sandbox_memory_bytes``,
        ``sandbox_tasks``). Raises CgroupsUnavailable (nothing is left behind)."""
        if limits.get("cgroups", True) is False:
            raise CgroupsUnavailable(errno.EPERM, "turned off in grader_config.LIMITS['cgroups']")
        version, bases = _layout()
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        dirs: dict[str, Path] = {}
        group = cls(version, dirs)
        try:
            if version == 2:
                _enable_controllers(bases["cpu"])
            for controller, base in bases.items():
                _sweep(base)
                path = base / name
                if path not in dirs.values():
                    path.mkdir()
                dirs[controller] = path
            group._limit(limits)
        except OSError as exc:
            group.remove(timeout=1.0)
            if isinstance(exc, CgroupsUnavailable):
                raise
            raise CgroupsUnavailable(exc.errno or errno.EPERM,
                                     f"cannot create a cgroup ({exc.strerror or exc}: "
                                     f"{getattr(exc, 'filename', '') or ''})") from None
        return group

    def _limit(self, limits: dict) -> None:
        cores = float(limits.get("cpu_cores", 1.0))
        memory = int(limits["sandbox_memory_bytes"])
        tasks = int(limits["sandbox_tasks"])
        quota = max(1000, int(cores * PERIOD_US))
        if self.version == 2:
            d = self.dirs["cpu"]
            _write(d / "cpu.max", f"{quota} {PERIOD_US}")
            _write(d / "memory.max", memory)
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", 0)
            if (d / "memory.oom.group").exists():
                _write(d / "memory.oom.group", 1)
            _write(d / "pids.max", tasks)
            return
        _write(self.dirs["cpu"] / "cpu.cfs_period_us", PERIOD_US)
        _write(self.dirs["cpu"] / "cpu.cfs_quota_us", quota)
        mem = self.dirs["memory"]
        _write(mem / "memory.limit_in_bytes", memory)
        if (mem / "memory.memsw.limit_in_bytes").exists():  # no swapping past the limit
            try:
                _write(mem / "memory.memsw.limit_in_bytes", memory)
            except OSError:
                pass
        _write(self.dirs["pids"] / "pids.max", tasks)

    def add(self, pid: int) -> None:
        """Move ``pid`` (the jail, before it reads its configuration) into the group."""
        for path in sorted(set(self.dirs.values())):
            _write(path / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        found = set()
        for path in set(self.dirs.values()):
            for line in _read(path / "cgroup.procs").split():
                if line.isdigit():
                    found.add(int(line))
        return sorted(found)

    def remove(self, timeout: float = 10.0) -> bool:
        """End every process left in the group and delete it. True when it is gone."""
        if not self.dirs:
            return True
        if self.version == 2 and (self.dirs["cpu"] / "cgroup.kill").exists():
            try:
                _write(self.dirs["cpu"] / "cgroup.kill", 1)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left:
                break
            if time.monotonic() > deadline:
                return False
            for pid in left:  # still in our group a moment ago: ours to end
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        gone = True
        for path in sorted(set(self.dirs.values())):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        gone = False
                        break
                    time.sleep(0.02)  # the last task is still being torn down
            else:
                gone = False
        if gone:
            self.dirs = {}
        return gone

    # -- what happened ----------------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        """How many processes the kernel killed for the group's memory limit so far."""
        path = self.dirs.get("memory")
        if path is None:
            return 0
        text = _read(path / ("memory.events" if self.version == 2 else "memory.oom_control"))
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def cpu_stat(self) -> dict[str, int]:
        path = self.dirs.get("cpu")
        out = {}
        for line in _read(path / "cpu.stat").splitlines() if path else ():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out


def _enable_controllers(base: Path) -> None:
    wanted = [c for c in CONTROLLERS if c not in _read(base / "cgroup.subtree_control").split()]
    if wanted:
        _write(base / "cgroup.subtree_control", " ".join("+" + c for c in wanted))


def _sweep(base: Path) -> None:
    """Delete groups left by graders that died (kill -9): empty, and their grading process is gone."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        pid = entry.name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        if not _read(entry / "cgroup.procs").split():
            try:
                entry.rmdir()
            except OSError:
                pass


@functools.lru_cache(maxsize=8)
def _probe(key: tuple) -> str:
    limits = dict(key)
    try:
        group = Cgroup.create(limits)
    except CgroupsUnavailable as exc:
        return f"unavailable: {exc.strerror}; per-process rlimits only"
    version = group.version
    group.remove(timeout=2.0)
    cores = float(limits.get("cpu_cores", 1.0))
    return (f"v{version}: cpu, memory, pids ({cores:g} CPU, {int(limits['sandbox_memory_bytes']) / 2**30:g} GiB "
            f"memory and {int(limits['sandbox_tasks'])} tasks for the whole sandbox)")


def status(limits: dict) -> str:
    """What a sandbox gets here, e.g. "v1: cpu, memory, pids (...)" or "unavailable: <why>; ..."."""
    keys = ("cgroups", "cpu_cores", "sandbox_memory_bytes", "sandbox_tasks")
    return _probe(tuple(sorted((k, limits.get(k)) for k in keys if k in limits)))
