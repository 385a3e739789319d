"""The first code a sandboxed Python runs: it confines itself, reports how, then runs one job.

Started by `generators.verify.sandbox_launch` as `python -I -B -S sandbox_child.py CONFIG_JSON`
with the job on stdin: a code step (`{"context": ancestors' code, "code": the step's code}`)
or a program and its tests (`{"kind": "tests", ...}`, run by `sandbox_harness.py`). Inside
bubblewrap's namespaces when the machine has them (`sandbox_layers.bwrap_argv`); the parent
has already put the run in its pids cgroup (root) and set its stack size. Before any
untrusted line runs it:
1. sets rlimits: CPU seconds, address space, file size, open files, no core files, and
   processes (RLIMIT_NPROC; it binds a non-root user, and inside bubblewrap's user
   namespace it counts only the sandbox's own processes; host root is exempt, hence the
   parent's pids cgroup);
2. without bubblewrap only (inside it, bubblewrap did these before the interpreter
   started): sets no_new_privs, drops every capability (root), applies Landlock
   (`sandbox_kernel.landlock`, why only there) and installs the seccomp filter
   (`sandbox_kernel.install_seccomp`: sockets, io_uring, ptrace, mounts, namespaces, bpf,
   perf, keyring, modules...);
3. installs an audit hook (PEP 578) that refuses process creation, sockets, C calls through
   ctypes, writes outside the working folder, reads outside the allowed folders and a few
   ways around the hook itself, and writes `sandbox: denied EVENT` to stderr each time. It
   is not a boundary (C code raises no audit event: cffi, a native module); it makes
   refusals legible. Everything it reads is bound into it when it is made: rewriting this
   module's globals, `os.path.realpath` or a builtin from model code changes nothing.
Then it reads back from the kernel what holds (/proc/self/status: seccomp mode, capabilities,
no_new_privs; its uid map) and writes `confined JSON` on `status_fd`, which only the parent
reads and which it closes before any untrusted line runs.

Exit status: 0 ran to the end, 1 the code raised, 3 MemoryError, 4 confinement failed
(nothing was run). Standard library only: it must not import the project.
"""

import builtins
import contextlib
import io
import json
import os
import resource
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_harness  # noqa: E402  (beside this file; loaded before the audit hook)
import sandbox_kernel  # noqa: E402

del sys.path[0]  # the program imports nothing from this folder

EXIT_RAISED, EXIT_MEMORY, EXIT_SETUP = 1, 3, 4
SYSTEM_READ_ROOTS = sandbox_kernel.SYSTEM_READ_ROOTS
SYSTEM_READ_FILES = sandbox_kernel.SYSTEM_READ_FILES

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
    # Started with -S: the import folders `python -I` would have, without site's .pth work.
    sys.path.extend(p for p in config.get("sys_path", ()) if p not in sys.path)
    job = json.loads(sys.stdin.read())
    work = os.path.realpath(config["work"])
    try:
        applied = confine(config, work)
    except Exception as exc:  # nothing untrusted has run: refuse to run it unconfined
        sys.stderr.write(f"sandbox: confinement failed: {exc!r}\n")
        return EXIT_SETUP
    # Tell the parent, on a pipe only it reads, that confinement held and how; the code
    # cannot fake a failure of it (an exit status can be faked with os._exit).
    os.write(config["status_fd"], b"confined " + json.dumps(applied).encode() + b"\n")
    os.close(config["status_fd"])
    # `python -S` skips site, which adds exit() and quit(); programs end with them.
    builtins.exit = builtins.quit = _exit
    if job.get("kind") == "tests":
        return sandbox_harness.run_tests(job, config["results_fd"], work)
    return run(job)


def _exit(code=None):
    raise SystemExit(code)


def confine(config: dict, work: str) -> dict:
    """Apply the layers; return what the kernel says holds afterwards."""
    layers, limits = config["layers"], config["limits"]
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(limits["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(limits["file_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    files = int(limits["open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Always set (the old "only when not root" test missed a mapped root in a user namespace);
    # +2: this process and bubblewrap's init in the pid namespace count too.
    nproc = int(limits["processes"]) + 2
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    roots = _read_roots(work)
    applied = {"rlimits": True, "landlock": False, "audit_hook": False}
    if sys.platform.startswith("linux") and not layers.get("bwrap"):
        # Inside bubblewrap these are done before the interpreter starts: no_new_privs and
        # no capabilities (its user namespace), the seccomp filter (`--seccomp`).
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        sandbox_kernel.drop_capabilities(libc)
        sandbox_kernel.no_new_privs(libc)
        if layers.get("landlock"):
            sandbox_kernel.landlock(libc, work, roots)
            applied["landlock"] = True
        if layers.get("seccomp"):
            sandbox_kernel.install_seccomp(libc)
    if sys.platform.startswith("linux"):
        applied |= sandbox_kernel.observed()
    if layers.get("audit", True):
        sys.addaudithook(_make_hook(work, tuple(roots)))
        applied["audit_hook"] = True
    return applied


def _read_roots(work: str) -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, work}
    paths.update(p for p in sys.path if p)
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


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
