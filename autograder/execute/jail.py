"""Turn this process into the sandbox, then exec the harness. Standard library only.

Run by the trusted parent as ``python -I -S jail.py --for LABEL`` (the label names the submission for a
TA's ``ps``; nothing else is on the command line). The configuration arrives as JSON on stdin, which is
then pointed at /dev/null; the parent has already put this process in the sandbox's cgroup. In order:

1. new mount, network, PID, IPC, UTS and cgroup namespaces (plus a user namespace when not started as root);
2. a fresh tmpfs root holding read-only binds of only what the child needs (the OS, the Python
   installation and its packages, the harness) and a writable, size-capped home with the submission and
   the public data; ``pivot_root`` into it, so the repository, hidden tests, solutions, grader_config.py,
   gradebooks and other workers' folders do not exist for the child;
3. no network (a new network namespace with no interface up);
4. resource limits (memory, CPU time, file size, processes, open files, no core dumps);
5. a uid of its own (root start: a per-sandbox uid no one else uses; otherwise the user namespace maps
   a non-root uid), no capabilities, death with the parent;
6. the seccomp filter (seccomp.py), then exec of the harness with a scrubbed environment.

Set-up success is reported on a status pipe of its own (``fd_status`` in the configuration): the process
that becomes the harness writes ``ready <token>`` there and the pipe closes at its exec (close-on-exec), so
no student code ever holds it; a failure is written there instead. The parent decides from that pipe
alone, never from the child's output or exit status (which the student's code can imitate).

PID 1 of the new PID namespace stays a small reaper: when the harness ends, it exits with the harness's
status, and the kernel kills whatever the student's code left running in the namespace. Its command line
(readable as /proc/1/cmdline inside) is wiped to ``sandbox-init``: no host path, no configuration.
"""
import ctypes
import errno
import fcntl
import json
import os
import resource
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves this folder off sys.path
import seccomp  # noqa: E402  (standard library only, next to this file)
sys.path.pop(0)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE, PR_SET_NAME = 1, 38, 4, 15
SYS_PIVOT_ROOT = 155  # x86-64
EXIT_JAIL_FAILED = 121

STATUS_FD = 5          # the status pipe's number from the PID-namespace fork on
libc = ctypes.CDLL(None, use_errno=True)
status_fd = None       # where set-up failures are reported (the status pipe)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src, dst, fstype, flags, data=None):
    _check(libc.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None,
                      ctypes.c_ulong(flags), data.encode() if data else None), f"mount {src} on {dst}")


def _die_with_parent():
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def _bind(src, target, writable=False, device=False):
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(src, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if device else MS_NODEV) | (0 if writable else MS_RDONLY)
    try:
        _mount(None, target, None, flags)
    except OSError:
        # in a user namespace the original mount's locked flags must be kept: try with noexec as well
        _mount(None, target, None, flags | MS_NOEXEC)


def _build_root(cfg, root):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(root, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/dev", mode=0o755)
    for node in cfg["dev_nodes"]:
        if os.path.exists(node):
            _bind(node, root + node, writable=True, device=True)
    size = int(cfg["tmpfs_bytes"])
    for d in ("/tmp", "/dev/shm"):
        os.makedirs(root + d, exist_ok=True)
        _mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    home = root + cfg["home"]
    os.makedirs(home, exist_ok=True)
    _mount("tmpfs", home, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=755")
    # after the tmpfs mounts, so that a Python or venv living under /tmp (a CI clone, say) stays visible
    for src in cfg["binds_ro"]:
        if os.path.exists(src):
            _bind(src, root + src)
    for name, src in cfg["home_files"].items():
        with open(src, "rb") as f_in, open(os.path.join(home, name), "wb") as f_out:
            f_out.write(f_in.read())
    for name, src in cfg["home_dirs_ro"].items():
        _bind(src, os.path.join(home, name))
    _bind(cfg["grader_dir"], root + "/grader")
    os.chown(home, cfg["uid"], cfg["uid"])
    for name in cfg["home_files"]:
        os.chown(os.path.join(home, name), cfg["uid"], cfg["uid"])
    old = root + "/.old_root"
    os.makedirs(old)
    _check(libc.syscall(SYS_PIVOT_ROOT, root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.old_root", MNT_DETACH), "umount old root")
    os.rmdir("/.old_root")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _limits(lim):
    pairs = {
        resource.RLIMIT_DATA: lim["memory_bytes"], resource.RLIMIT_CPU: lim["cpu_seconds"],
        resource.RLIMIT_FSIZE: lim["file_bytes"], resource.RLIMIT_NPROC: lim["processes"],
        resource.RLIMIT_NOFILE: lim["open_files"], resource.RLIMIT_CORE: 0,
    }
    for which, value in pairs.items():
        resource.setrlimit(which, (int(value), int(value)))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read_config():
    """The configuration from stdin (the parent writes it and closes); stdin then reads /dev/null."""
    chunks = []
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    return json.loads(b"".join(chunks).decode("utf-8"))


def _place_fds(wanted):
    """dup2 each fd to its target number (the targets may collide with the sources), then close the rest."""
    moved = {fcntl.fcntl(src, fcntl.F_DUPFD, 100): dst for src, dst in wanted.items()}
    for src in wanted:
        os.close(src)
    for src, dst in moved.items():
        os.dup2(src, dst)
        os.close(src)
    os.closerange(max(wanted.values()) + 1, 65536)


def _hide_command_line():
    """Wipe this process's argv and environment strings (what /proc/PID/cmdline and environ read) and
    name it ``sandbox-init``: PID 1's command line would otherwise show jail.py's host path and label."""
    text = open("/proc/self/stat").read()
    fields = text[text.rindex(")") + 2:].split()
    arg_start, arg_end, env_start, env_end = (int(fields[i]) for i in (45, 46, 47, 48))
    if not (arg_start and arg_end > arg_start):
        raise OSError(errno.EINVAL, "cannot locate the command line in /proc/self/stat")
    for start, end in ((arg_start, arg_end), (env_start, env_end)):
        if start and end > start:
            ctypes.memset(start, 0, end - start)
    name = b"sandbox-init"
    ctypes.memmove(arg_start, name, min(len(name), arg_end - arg_start - 1))
    libc.prctl(PR_SET_NAME, name, 0, 0, 0)


def _report(line):
    if status_fd is not None:
        try:
            os.write(status_fd, (line.rstrip("\n") + "\n").encode("utf-8", "replace")[:4000])
        except OSError:
            pass


def main():
    global status_fd
    cfg = _read_config()
    status_fd = int(cfg["fd_status"])
    _die_with_parent()
    as_root = os.geteuid() == 0
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
    if not as_root:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        if ctypes.get_errno() != errno.EINVAL:
            _check(-1, "unshare")
        _check(libc.unshare(flags & ~CLONE_NEWCGROUP), "unshare")   # a kernel without cgroup namespaces
    if as_root:
        uid = cfg["uid_base"] + os.getpid()     # unique while this sandbox lives
    else:
        uid = 1000
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {outer_uid} 1\n")
        _write("/proc/self/gid_map", f"0 {outer_gid} 1\n")
    cfg["uid"] = uid if as_root else 0
    pid = os.fork()
    if pid:  # outside the PID namespace: wait and pass the status on
        for fd in (status_fd, cfg["fd_in"], cfg["fd_out"]):
            os.close(fd)
        status_fd = None
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    _die_with_parent()
    _hide_command_line()
    _build_root(cfg, cfg["staging"])
    libc.sethostname(b"sandbox", 7)
    _place_fds({cfg["fd_in"]: 3, cfg["fd_out"]: 4, status_fd: STATUS_FD})
    status_fd = STATUS_FD
    if as_root:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    else:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)  # uid 0 only inside the user namespace; every capability is dropped below
    _die_with_parent()  # a change of credentials clears the parent-death signal: set it again
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")  # PID 1's memory is not readable
    _limits(cfg["limits"])
    os.chdir(cfg["home"])
    child = os.fork()
    if child == 0:
        _exec_harness(cfg, as_root)
    os.close(STATUS_FD)      # PID 1 keeps nothing of the parent's pipes
    status_fd = None
    os.close(3)
    os.close(4)
    # PID 1: reap everything, leave with the harness's status
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(EXIT_JAIL_FAILED)
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _exec_harness(cfg, as_root):
    """In the process that becomes the harness: last privileges off, the filter on, "ready", exec."""
    try:
        _die_with_parent()
        if not as_root:
            _drop_all_capabilities()
        filtered = "off"
        if cfg.get("seccomp", True):
            if seccomp.available() is None:
                seccomp.install()
                filtered = "on"
            else:
                filtered = "unavailable"
        fcntl.fcntl(STATUS_FD, fcntl.F_SETFD, fcntl.FD_CLOEXEC)  # closed by the exec: the harness never has it
        _report(f"ready {cfg['token']} seccomp={filtered}")
        os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent must hear of it
        _report(f"failed: starting the harness: {type(exc).__name__}: {exc}")
        os._exit(EXIT_JAIL_FAILED)


def _drop_all_capabilities():
    # capset with empty sets (version 3, this pid); after this even uid 0 in the namespace is powerless
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # noqa: BLE001 - the parent reads this from the status pipe: a sandbox error
        _report(f"failed: {type(exc).__name__}: {exc}")
        os._exit(EXIT_JAIL_FAILED)
