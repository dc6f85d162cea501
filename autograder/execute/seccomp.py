"""The sandbox's seccomp filter: a classic-BPF program, built and loaded with the standard library only.

Loaded by jail.py in the process that becomes the harness, after every mount, after ``no_new_privs`` and
right before ``execve`` of the harness; it is inherited by everything the student's code starts and can
never be removed. Default: allow. Denied with EPERM: what a notebook never needs and what would widen the
sandbox or reach the kernel's rarely used corners (see README.md in this folder for the list and why).
``clone3`` answers ENOSYS, so glibc falls back to ``clone``, whose flags the filter can read: ``clone``
with any namespace flag is denied, plain ``fork``/threads pass.

No libseccomp: the program is small enough to write by hand, and so nothing can be missing at run time.
Only x86-64 has a table here; elsewhere ``available()`` says why not and the jail runs without a filter
(``sandbox_description`` reports it).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# --- classic BPF, as in <linux/filter.h> and <linux/seccomp.h> -------------------------------------------
BPF_LD, BPF_W, BPF_ABS = 0x00, 0x00, 0x20
BPF_JMP, BPF_JEQ, BPF_JGE, BPF_JSET, BPF_K = 0x05, 0x10, 0x30, 0x40, 0x00
BPF_RET = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
OFF_NR, OFF_ARCH, OFF_ARG0_LOW = 0, 4, 16

# namespace flags of clone(2); CLONE_NEWTIME (0x80) only exists for clone3/unshare, denied wholesale
CLONE_NAMESPACES = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                    | 0x40000000)

# x86-64 system call numbers (asm/unistd_64.h), grouped by why they are denied
DENIED_X86_64 = {
    # new namespaces or joining others: the way back out of the sandbox's view of the machine
    "unshare": 272, "setns": 308,
    # file systems and the root: the sandbox's view is fixed by the jail
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "quotactl": 179, "quotactl_fd": 443,
    "swapon": 167, "swapoff": 168, "acct": 163,
    # other processes' memory and file descriptors
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
    # the kernel itself: modules, kexec, reboot, BPF, perf, keyrings, userfaultfd, io_uring
    "init_module": 175, "finit_module": 313, "delete_module": 176, "create_module": 174,
    "get_kernel_syms": 177, "query_module": 178, "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
    "bpf": 321, "perf_event_open": 298, "add_key": 248, "request_key": 249, "keyctl": 250,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "lookup_dcookie": 212, "nfsservctl": 180, "uselib": 134, "syslog": 103, "fanotify_init": 300,
    # the machine's identity, clock and I/O ports
    "sethostname": 170, "setdomainname": 171, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
    "clock_adjtime": 305, "iopl": 172, "ioperm": 173, "vhangup": 153,
}
CLONE_X86_64, CLONE3_X86_64 = 56, 435


def available() -> str | None:
    """None when the filter can be loaded here; otherwise why not."""
    if platform.system() != "Linux":
        return f"not Linux ({platform.system()})"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"no system call table for {platform.machine()} in autograder/execute/seccomp.py"
    return None


def _ins(code, k, jt=0, jf=0):
    return [code, jt, jf, k]


def program() -> list[list[int]]:
    """The filter as [code, jt, jf, k] instructions (x86-64)."""
    denied = sorted(set(DENIED_X86_64.values()))
    # layout: 0 load arch | 1 arch check | 2 load nr | 3 x32 check | 4 clone3 | 5 clone | denied... |
    #         allow | clone: load flags, jset, allow | deny (EPERM) | enosys  (BPF jumps only forward)
    head = 6
    allow = head + len(denied)
    clone = allow + 1
    deny = clone + 3
    enosys = deny + 1

    def to(target, here):  # relative jump from instruction ``here``
        offset = target - here - 1
        assert 0 <= offset < 256, offset
        return offset

    prog = [
        _ins(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        _ins(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, to(deny, 1)),   # another ABI (i386): deny
        _ins(BPF_LD | BPF_W | BPF_ABS, OFF_NR),
        _ins(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, to(deny, 3), 0),     # the x32 ABI: deny
        _ins(BPF_JMP | BPF_JEQ | BPF_K, CLONE3_X86_64, to(enosys, 4), 0),
        _ins(BPF_JMP | BPF_JEQ | BPF_K, CLONE_X86_64, to(clone, 5), 0),
    ]
    for i, nr in enumerate(denied):
        prog.append(_ins(BPF_JMP | BPF_JEQ | BPF_K, nr, to(deny, head + i), 0))
    prog += [
        _ins(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        _ins(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_LOW),                       # clone's flags (low 32 bits)
        _ins(BPF_JMP | BPF_JSET | BPF_K, CLONE_NAMESPACES, to(deny, clone + 1), 0),
        _ins(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        _ins(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno.EPERM),
        _ins(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno.ENOSYS),
    ]
    assert len(prog) == enosys + 1
    return prog


def install() -> int:
    """Load the filter into this process (``no_new_privs`` must be set already). Returns the number of
    instructions. Raises OSError when the kernel refuses it."""
    why = available()
    if why:
        raise OSError(errno.ENOSYS, f"seccomp filter unavailable: {why}")
    prog = program()
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
    return len(prog)


def describe() -> str:
    why = available()
    if why:
        return f"unavailable: {why}; no system call filter"
    return (f"on: {len(DENIED_X86_64)} system calls denied with EPERM (new namespaces, mount, ptrace, kernel "
            "modules, kexec, keyrings, bpf, perf, userfaultfd, io_uring, ...); clone with namespace flags "
            "denied, clone3 answers ENOSYS; see autograder/execute/README.md")
