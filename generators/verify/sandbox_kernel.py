"""The kernel layers the sandboxed child installs on itself: seccomp, capabilities, Landlock.

Imported by `sandbox_child.py` before any untrusted line runs (standard library only, no
project import; ctypes only where it is needed: importing it costs a run ~15 ms). Each
function raises `OSError` when the kernel refuses, so the child
refuses to run rather than run unconfined.

Hand-written, and why: bubblewrap (the namespaces, `sandbox_layers.bwrap_argv`) takes a
seccomp program only as compiled BPF on a file descriptor, and the libseccomp bindings are
not on PyPI; the filter below is a short deny list in classic BPF (`seccomp_program`),
handed to bubblewrap as bytes (`seccomp_bytes`, installed before the interpreter starts),
or installed by the child itself where bubblewrap cannot run (`install_seccomp`).
Landlock is used only there (without bubblewrap):
inside bubblewrap's mount namespace the child sees nothing writable but its tmpfs and
nothing readable but the interpreter, so Landlock would add nothing.
"""

import os
import struct

PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 24, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
X32_SYSCALL_BIT = 0x40000000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
CLONE_NAMESPACES |= 0x20000000 | 0x40000000 | 0x00000080

# name: (x86_64, aarch64); numbers from arch/x86/entry/syscalls/syscall_64.tbl and
# include/uapi/asm-generic/unistd.h. Refused with EPERM: sockets of any family (model code
# has no use for one; with bubblewrap there is no network either), io_uring (it makes
# sockets and opens files outside the syscalls filtered here), process and kernel
# introspection (ptrace, process_vm_*, perf, bpf, userfaultfd), mounts and namespaces, the
# kernel keyring, modules, kexec, handles that bypass path checks (open_by_handle_at).
DENIED = {
    "socket": (41, 198),
    "socketpair": (53, 199),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "perf_event_open": (298, 241),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
    "pidfd_getfd": (438, 438),
    "acct": (163, 89),
    "personality": (135, 92),
    "quotactl": (179, 60),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
}
ARCH = {"x86_64": (0, 0xC000003E, 56, 435), "aarch64": (1, 0xC00000B7, 220, 435)}


def no_new_privs(libc) -> None:
    import ctypes

    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) lines: deny the syscalls of `DENIED` (EPERM), new
    namespaces through clone (EPERM), clone3 (ENOSYS, so the C library falls back to clone,
    whose flags a filter can read), any other ABI (int 0x80, x32).

    >>> len(seccomp_program("x86_64")) > len(DENIED)
    True
    """
    column, audit_arch, sys_clone, sys_clone3 = ARCH[machine]
    deny, enosys = SECCOMP_RET_ERRNO | EPERM, SECCOMP_RET_ERRNO | ENOSYS
    denied = sorted({numbers[column] for numbers in DENIED.values()})
    # Instructions with symbolic jump targets ("deny", "enosys", "clone"), resolved below.
    program: list[tuple] = [
        (BPF_LD_W_ABS, 0, 0, 4),  # A = arch
        (BPF_JEQ_K, 1, 0, audit_arch),  # native: skip the next line
        (BPF_RET_K, 0, 0, deny),
        (BPF_LD_W_ABS, 0, 0, 0),  # A = syscall number
        (BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT),
        (BPF_JEQ_K, "enosys", 0, sys_clone3),
        (BPF_JEQ_K, "clone", 0, sys_clone),
        *((BPF_JEQ_K, "deny", 0, nr) for nr in denied),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("clone",),
        (BPF_LD_W_ABS, 0, 0, 16),  # A = low word of args[0] (clone's flags)
        (BPF_JSET_K, "deny", 0, CLONE_NAMESPACES),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("deny",),
        (BPF_RET_K, 0, 0, deny),
        ("enosys",),
        (BPF_RET_K, 0, 0, enosys),
    ]
    labels, code = {}, []
    for line in program:
        if len(line) == 1:
            labels[line[0]] = len(code)
        else:
            code.append(line)
    resolved = []
    for pc, (op, jt, jf, k) in enumerate(code):
        if isinstance(jt, str):
            jt = labels[jt] - pc - 1
        if not 0 <= jt < 256:
            raise OSError(EPERM, "seccomp program: jump out of range")
        resolved.append((op, jt, jf, k))
    return resolved


def seccomp_bytes(machine: str) -> bytes:
    """The filter as `struct sock_filter` array bytes, what `bwrap --seccomp FD` reads."""
    return b"".join(struct.pack("=HBBI", *line) for line in seccomp_program(machine))


def install_seccomp(libc) -> None:
    """Install `seccomp_program` on this process (no_new_privs must be set)."""
    import ctypes

    resolved = seccomp_program(os.uname().machine)

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(resolved))(*(SockFilter(*line) for line in resolved))
    prog = SockFprog(len(resolved), filters)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def drop_capabilities(libc) -> None:
    """Empty the bounding, effective, permitted and inheritable sets (running as root without
    bubblewrap, whose user namespace leaves the child none)."""
    import ctypes

    if os.geteuid() != 0:
        return
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: fine

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset")


# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
SYSTEM_READ_ROOTS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib")
SYSTEM_READ_FILES = ("/etc/ld.so.cache", "/dev/null", "/dev/urandom")


def landlock(libc, work: str, roots: list[str]) -> None:
    """Read-only beneath `roots` and the system libraries, full access beneath `work`,
    nothing else; no TCP bind or connect; signals and abstract sockets scoped to itself."""
    import ctypes

    abi = libc.syscall(SYS_CREATE_RULESET, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        raise OSError(ctypes.get_errno(), "landlock is not available")
    handled_fs = (1 << 13) - 1
    if abi >= 2:
        handled_fs |= 1 << 13  # REFER
    if abi >= 3:
        handled_fs |= FS_TRUNCATE
    if abi >= 5:
        handled_fs |= FS_IOCTL_DEV

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled_fs, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = ctypes.sizeof(attr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
    rules = [(root, read) for root in (*roots, *SYSTEM_READ_ROOTS)]
    rules += [(path, FS_READ_FILE) for path in SYSTEM_READ_FILES]
    rules += [("/dev/null", FS_WRITE_FILE), (work, handled_fs)]
    try:
        for path, allowed in rules:
            if not os.path.exists(path):
                continue
            if not os.path.isdir(path):
                allowed &= FILE_RIGHTS
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = PathBeneath(allowed & handled_fs, fd)
                if libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        if libc.syscall(SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def observed() -> dict:
    """What the kernel says this process runs under (/proc/self/status and uid_map): read
    after confinement, so a report says what holds, not what was asked for."""
    status = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.strip()
    except OSError:
        return {}
    host_uid = None
    try:
        with open("/proc/self/uid_map") as f:
            first = f.read().split()
        if first[:3] != ["0", "0", "4294967295"]:
            host_uid = int(first[1])  # the host uid our uid maps to
    except (OSError, IndexError, ValueError):
        pass
    return {
        "seccomp": status.get("Seccomp") == "2",
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "no_caps": status.get("CapEff", "1").strip("0") == ""
        and status.get("CapPrm", "1").strip("0") == "",
        "userns": host_uid is not None,
        "host_uid": host_uid if host_uid is not None else os.getuid(),
    }
