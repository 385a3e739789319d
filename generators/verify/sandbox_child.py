"""The first code a sandboxed Python runs: it confines itself, then runs one job.

Started by `generators.verify.sandbox` as `python -I -B sandbox_child.py CONFIG_JSON` with the job
(`{"context": ancestors' code, "code": the step's code}`) on stdin, inside a network
namespace when the machine allows one. Before any untrusted line runs it:
1. joins its pids cgroup (when the parent made one: running as root, where RLIMIT_NPROC
   does not apply), so it cannot create processes or threads;
2. sets rlimits: CPU seconds, address space, file size, open files, processes, no core;
3. drops every capability (a root sandbox keeps uid 0 but loses its powers) and sets
   no_new_privs;
4. applies a Landlock ruleset when the kernel has one: read-only access beneath the
   interpreter's own folders and the system libraries, full access beneath its throwaway
   working folder, nothing else; no TCP bind or connect; no signals outside itself;
5. installs a seccomp filter that makes `socket()` and `socketpair()` fail with EPERM for
   every address family. Landlock does not cover connecting to a pathname Unix socket and a
   network namespace does not isolate them (a container runtime's socket is one, reachable
   as root), so the kernel must refuse to create the socket at all. Chosen over a bubblewrap
   mount namespace: it needs no package, works unprivileged and in containers that forbid
   new mount namespaces, and covers every family (pathname, abstract, netlink, raw) rather
   than hiding the paths we thought of; model code has no use for a socket;
6. installs an audit hook (PEP 578) that refuses process creation, sockets, C calls through
   ctypes, writes outside the working folder, reads outside the allowed folders and a few
   ways around the hook itself, and writes `sandbox: denied EVENT` to stderr each time.
   Imports stay allowed (sympy imports ctypes and subprocess); what they could do is not.
   Everything the hook reads is bound into it when it is made (its rules, and the functions
   it calls, builtins included): rewriting this module's globals, `os.path.realpath` or a
   builtin from model code changes nothing it decides.
Then it runs the ancestors' code with its output discarded, and the step's code.

Exit status: 0 ran to the end, 1 the code raised, 3 MemoryError, 4 confinement failed
(nothing was run); "confined" is written to `status_fd` before any untrusted line runs.
Standard library only: it must not import the project.
"""

import contextlib
import io
import json
import os
import resource
import sys
import traceback

EXIT_RAISED, EXIT_MEMORY, EXIT_SETUP = 1, 3, 4

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24

SYSTEM_READ_ROOTS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib")
SYSTEM_READ_FILES = ("/etc/ld.so.cache", "/dev/null", "/dev/urandom")

DENIED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.system",
    "os.kill",
    "os.killpg",
    "os.setns",
    "os.unshare",
    "pty.",
    "signal.pthread_kill",
    "resource.setrlimit",
    "resource.prlimit",
    "gc.get_",
    "sys.remote_exec",
    "webbrowser.",
)
PATH_WRITES = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "os.chdir",
        "os.chflags",
        "os.lchflags",
        "os.setxattr",
        "os.removexattr",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.move",
    }
)
PATH_READS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def main() -> int:
    config = json.loads(sys.argv[1])
    job = json.loads(sys.stdin.read())
    work = os.path.realpath(config["work"])
    try:
        confine(config, work)
    except Exception as exc:  # nothing untrusted has run: refuse to run it unconfined
        sys.stderr.write(f"sandbox: confinement failed: {exc!r}\n")
        return EXIT_SETUP
    # Tell the parent, on a pipe only it reads, that confinement held; the code cannot fake
    # a failure of it (an exit status can be faked with os._exit).
    os.write(config["status_fd"], b"confined")
    os.close(config["status_fd"])
    return run(job)


def confine(config: dict, work: str) -> None:
    layers = config["layers"]
    if layers.get("cgroup"):
        with open(os.path.join(layers["cgroup"], "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    limits = config["limits"]
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(limits["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(limits["file_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    files = int(limits["open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() != 0:  # RLIMIT_NPROC binds only non-root users (root: the pids cgroup)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    roots = _read_roots(work)
    if sys.platform.startswith("linux"):
        _kernel_confine(layers, work, roots)
    if layers.get("audit", True):
        sys.addaudithook(_make_hook(work, tuple(roots)))


def _read_roots(work: str) -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, work}
    paths.update(p for p in sys.path if p)
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


def _kernel_confine(layers: dict, work: str, roots: list[str]) -> None:
    import ctypes  # only here, before the audit hook forbids it

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    _drop_capabilities(ctypes, libc)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if layers.get("landlock"):
        _landlock(ctypes, libc, work, roots)
    if layers.get("seccomp"):
        _no_sockets(ctypes, libc)


# seccomp (linux/seccomp.h, linux/filter.h, linux/audit.h): a classic BPF program over
# `struct seccomp_data` (nr at offset 0, arch at offset 4).
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM = 1
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
# arch -> (AUDIT_ARCH_*, socket, socketpair)
SOCKET_SYSCALLS = {"x86_64": (0xC000003E, 41, 53), "aarch64": (0xC00000B7, 198, 199)}
X32_SYSCALL_BIT = 0x40000000


def _no_sockets(ctypes, libc) -> None:
    """Make socket() and socketpair() fail with EPERM (also any syscall of another ABI)."""
    arch, sys_socket, sys_socketpair = SOCKET_SYSCALLS[os.uname().machine]
    deny = SECCOMP_RET_ERRNO | EPERM
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # A = arch
        (BPF_JEQ_K, 1, 0, arch),  # native: skip the next line
        (BPF_RET_K, 0, 0, deny),  # int 0x80 / another ABI: refused
        (BPF_LD_W_ABS, 0, 0, 0),  # A = syscall number
        (BPF_JGE_K, 3, 0, X32_SYSCALL_BIT),  # x32 numbers: refused
        (BPF_JEQ_K, 2, 0, sys_socket),
        (BPF_JEQ_K, 1, 0, sys_socketpair),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (BPF_RET_K, 0, 0, deny),
    ]

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(program))(*(SockFilter(*line) for line in program))
    prog = SockFprog(len(program), filters)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def _drop_capabilities(ctypes, libc) -> None:
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


def _landlock(ctypes, libc, work: str, roots: list[str]) -> None:
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

    # TCP bind and connect handled with no rule: both refused (ABI 4). Signals and abstract
    # unix sockets scoped to the sandbox (ABI 6).
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


def _make_hook(work: str, roots: tuple[str, ...]):
    # Every name the hook uses is bound here, as a closure cell holding an immutable value or
    # a function object taken now: the hook reads no module global and no builtin at call
    # time, so model code that rewrites `sys.modules["__main__"]`, `os.path.realpath` or
    # `builtins.isinstance` changes nothing it decides.
    work_prefix = work.rstrip("/") + "/"
    read_prefixes = tuple(r.rstrip("/") + "/" for r in (*roots, *SYSTEM_READ_ROOTS))
    read_files = frozenset(SYSTEM_READ_FILES)
    denied_prefixes, path_writes, path_reads = DENIED_PREFIXES, PATH_WRITES, PATH_READS
    write_flags = WRITE_FLAGS
    write, fsdecode, fspath, getcwd = os.write, os.fsdecode, os.fspath, os.getcwd
    realpath, join = os.path.realpath, os.path.join
    is_a, some, permission_error = isinstance, any, PermissionError
    str_, bytes_, pathlike, int_, length = str, bytes, os.PathLike, int, len

    def deny(event: str, what: object = "") -> None:
        write(2, f"sandbox: denied {event} {what}".rstrip().encode()[:300] + b"\n")
        raise permission_error(f"sandbox: {event} is not allowed")

    def resolve(path) -> str | None:
        if is_a(path, int_) or path is None:
            return None
        path = fsdecode(fspath(path))
        return realpath(join(getcwd(), path))

    def inside(path: str, prefixes) -> bool:
        return (path + "/").startswith(prefixes)

    def hook(event: str, args: tuple) -> None:
        # Fail closed: if a check itself breaks (model code replaced something the standard
        # library uses under it), the event is refused, and says so.
        try:
            check(event, args)
        except permission_error:
            raise
        except BaseException:
            deny(event, "(the sandbox's check of it failed)")

    def check(event: str, args: tuple) -> None:
        if event.startswith(denied_prefixes):
            deny(event)
        elif event.startswith("ctypes."):
            # Importing ctypes opens the process image (sympy imports it for `sizeof`); looking
            # up or calling a C function, or reading raw memory, is refused.
            if not (event == "ctypes.dlopen" and args and args[0] is None):
                deny(event)
        elif event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if length(args) > 2 else 0
            writes = (mode is not None and some(c in mode for c in "wax+")) or (
                mode is None and flags & write_flags
            )
            if writes:
                if not inside(path, (work_prefix,)) and path != "/dev/null":
                    deny("open for writing", path)
            elif not inside(path, (work_prefix, *read_prefixes)) and path not in read_files:
                deny("open", path)
        elif event in path_writes:
            for arg in args[:2]:
                if is_a(arg, (str_, bytes_, pathlike)):
                    path = resolve(arg)
                    if path is not None and not inside(path, (work_prefix,)):
                        deny(event, path)
        elif event in path_reads:
            path = resolve(args[0]) if args and args[0] not in (None, "") else None
            if path is not None and not inside(path, (work_prefix, *read_prefixes)):
                deny(event, path)
        elif event == "object.__setattr__" and length(args) > 1 and args[1] == "__code__":
            deny(event, "__code__")

    return hook


def run(job: dict) -> int:
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        if job.get("context"):
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(job["context"], "<earlier steps>", "exec"), scope)
        exec(compile(job["code"], "<step>", "exec"), scope)
    except MemoryError:
        sys.stderr.write("MemoryError: the step ran out of memory\n")
        return EXIT_MEMORY
    except SystemExit as exc:
        return 0 if exc.code in (None, 0) else EXIT_RAISED
    except BaseException as exc:
        # No source lines: looking them up would open files the sandbox may not read.
        frames = [
            (frame.f_code.co_filename, lineno)
            for frame, lineno in traceback.walk_tb(exc.__traceback__)
            if frame.f_code.co_filename.startswith("<")
        ]
        where = "".join(f"  {name} line {lineno}\n" for name, lineno in frames[-2:])
        sys.stderr.write(where + "".join(traceback.format_exception_only(type(exc), exc)))
        return EXIT_RAISED
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
