"""Start one sandboxed child, wait for it with a deadline, kill everything it made, read back.

`launch(job, limits, want)` is the one place a sandboxed process is started (`sandbox.py`'s
code steps and `code_tests.py`'s programs both come here). The command is
`sh -c WRAPPER` (sets the stack size, joins the run's pids cgroup, then `exec`s) +
bubblewrap (`sandbox_layers.bwrap_argv`) + `python -I -B -S sandbox_child.py CONFIG`. At the
deadline the process group is killed; bubblewrap's pid namespace dies with its init
process, taking every process the code made with it (`setsid` ones included; bubblewrap's
`--die-with-parent` kills the init if we die first), and every task left in the cgroup is
killed too. The child's stdout and stderr go to files (capped by RLIMIT_FSIZE), as do the
records of a test run (`results_fd`); the writable folder is a tmpfs inside bubblewrap, so
nothing the code wrote outlives the run.

`RawRun.layers` says what ran: bubblewrap's namespaces as it reported them on `--info-fd`
(compared with ours), the cgroup the run joined, and what the child read back from the
kernel after confining itself. Not here: deciding anything about the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from reasonfactory.generators.verify.sandbox_kernel import seccomp_bytes
from reasonfactory.generators.verify.sandbox_layers import (
    INNER_CODE,
    INNER_WORK,
    bwrap_argv,
    cgroup_root,
    isolation,
    python_path,
)

CODE_DIR = os.path.dirname(os.path.abspath(__file__))
SETUP_FAILED = 97  # the wrapper could not join the cgroup: nothing ran
# Sets the stack (deep recursion is common in solutions; RLIMIT_AS still bounds memory),
# joins the pids cgroup when given one, then becomes the sandbox.
WRAPPER = (
    'ulimit -s "$1" 2>/dev/null; '
    'if [ -n "$2" ]; then echo $$ > "$2" || exit 97; fi; shift 2; exec "$@"'
)


@dataclass(frozen=True)
class Limits:
    """What one run may use. `processes` counts the processes and threads the code may have
    besides itself (0 = none: no fork, no thread)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 512
    file_mb: int = 8
    open_files: int = 64
    processes: int = 0
    output_chars: int = 4096
    tmpfs_mb: int = 64  # the writable folder (inside bubblewrap: a tmpfs of this size)
    stack_mb: int = 64


@dataclass(frozen=True)
class RawRun:
    """What came back from one child: exit status, output, records, the layers that held."""

    exit_code: int | None  # -N: killed by signal N (bubblewrap's 128 + N read back)
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    confined: bool
    layers: tuple[str, ...]
    results: bytes = b""


def launch(job: dict, limits: Limits, want: dict, results: bool = False) -> RawRun:
    """Run `job` in a fresh sandboxed child; `want` turns layers off for tests of each layer
    (`bwrap`, `seccomp`, `cgroup`, `landlock`, `audit`). `results`: give the child a file
    for its test records (`RawRun.results`)."""
    bwrap = want["bwrap"] and isolation()["bwrap"]
    outdir = Path(tempfile.mkdtemp(prefix=f"rf-sandbox-out-{os.getpid()}-"))
    work = INNER_WORK if bwrap else tempfile.mkdtemp(prefix=f"rf-sandbox-{os.getpid()}-")
    cgroup = make_cgroup(limits.processes + 3) if want["cgroup"] else None
    status_read, status_write = os.pipe()
    info_read, info_write = os.pipe() if bwrap else (None, None)
    results_fd = os.open(outdir / "results", os.O_WRONLY | os.O_CREAT, 0o600) if results else -1
    config = {
        "work": work,
        "sys_path": list(python_path()),
        "status_fd": status_write,
        "results_fd": results_fd,
        "limits": {
            "cpu_seconds": max(1, int(limits.cpu_seconds)),
            "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb,
            "open_files": limits.open_files,
            "processes": limits.processes,
        },
        "layers": {
            "bwrap": bwrap,
            "landlock": want["landlock"] and not bwrap and isolation()["landlock"],
            "seccomp": want["seccomp"] and isolation()["seccomp"],
            "audit": want["audit"],
        },
    }
    seccomp_read = None
    if bwrap:
        argv = [*bwrap_argv(limits.tmpfs_mb, CODE_DIR), "--info-fd", str(info_write)]
        if config["layers"]["seccomp"]:  # bubblewrap installs it before python starts
            seccomp_read, seccomp_write = os.pipe()
            os.write(seccomp_write, seccomp_bytes(os.uname().machine))  # < 1 KB: no block
            os.close(seccomp_write)
            argv += ["--seccomp", str(seccomp_read)]
        child = f"{INNER_CODE}/sandbox_child.py"
    else:
        argv, child = [], os.path.join(CODE_DIR, "sandbox_child.py")
    procs = f"{cgroup}/cgroup.procs" if cgroup else ""
    stack = str(limits.stack_mb * 1024)
    cmd = ["/bin/sh", "-c", WRAPPER, "rf-sandbox", stack, procs, *argv]
    cmd += [sys.executable, "-I", "-B", "-S", child, json.dumps(config)]
    fds = tuple(
        fd
        for fd in (status_write, info_write, results_fd, seccomp_read)
        if fd is not None and fd >= 0
    )
    (outdir / "job").write_text(json.dumps(job))  # a file, not a pipe: nothing can block
    started = time.perf_counter()
    timed_out = False
    try:
        with (
            open(outdir / "job", "rb") as stdin,
            open(outdir / "out", "wb") as out,
            open(outdir / "err", "wb") as err,
        ):
            proc = subprocess.Popen(
                cmd,
                stdin=stdin,
                stdout=out,
                stderr=err,
                cwd=work if not bwrap else "/",
                env=clean_env(work),
                start_new_session=True,
                close_fds=True,
                pass_fds=fds,
            )
            for fd in fds:
                os.close(fd)
            try:
                timed_out = not wait_for(proc, limits.wall_seconds)
            finally:
                kill(proc, cgroup)  # the code's other processes, whatever became of the first
                proc.wait()
        seconds = time.perf_counter() - started
        stdout = read_capped(outdir / "out", limits.output_chars)
        stderr = read_capped(outdir / "err", limits.output_chars)
        status = _read_all(status_read)
        info = _read_all(info_read) if info_read is not None else b""
        records = (outdir / "results").read_bytes() if results else b""
    finally:
        for fd in (status_read, info_read):
            if fd is not None:
                os.close(fd)
        remove_cgroup(cgroup)
        shutil.rmtree(outdir, ignore_errors=True)
        if not bwrap:
            shutil.rmtree(work, ignore_errors=True)
    confined = status.startswith(b"confined ")
    applied = _json(status[len(b"confined ") :]) if confined else {}
    layers = _layers(applied, info, cgroup, limits, bwrap) if confined else ()
    code = proc.returncode
    if bwrap and code is not None and code > 128:
        code = 128 - code  # bubblewrap exits 128 + the signal that killed its child
    return RawRun(
        exit_code=code,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        seconds=seconds,
        confined=confined and proc.returncode != SETUP_FAILED,
        layers=layers,
        results=records,
    )


def wait_for(proc: subprocess.Popen, seconds: float) -> bool:
    """Whether the process ended within `seconds`. A pidfd wakes us the moment it ends
    (`Popen.wait(timeout)` polls, adding up to 50 ms to every run)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        deadline = time.monotonic() + seconds
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(left * 1000)
        return True
    finally:
        os.close(pidfd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        if sum(map(len, chunks)) > 1 << 20:
            break
    return b"".join(chunks)


def _json(data: bytes) -> dict:
    with contextlib.suppress(ValueError):
        value = json.loads(data.split(b"\n", 1)[0] or b"{}")
        return value if isinstance(value, dict) else {}
    return {}


NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "cgroup")


def _layers(applied: dict, info: bytes, cgroup, limits: Limits, bwrap: bool) -> tuple[str, ...]:
    """The layers that held, in a fixed order, from what bubblewrap and the child reported."""
    out = []
    reported = _json(info.replace(b"\n", b" "))
    fresh = []
    for name in NAMESPACES:
        ours = _namespace(name)
        theirs = reported.get(f"{name}-namespace")
        if theirs is not None and ours is not None and theirs != ours:
            fresh.append(name)
    if applied.get("userns"):
        fresh.insert(0, "user")
    if bwrap and fresh:
        out.append(f"bwrap({'+'.join(fresh)})")
        out.append(f"tmpfs {limits.tmpfs_mb} MB")
    if cgroup:
        out.append("pids_cgroup")
    # RLIMIT_NPROC binds only a non-root host user. Inside bubblewrap's nested user namespace
    # (`--disable-userns`) the child's uid_map names the middle namespace's uid 0 even when we
    # are not root, so our own uid says it too (a non-root run reported no process cap).
    if applied.get("host_uid", 0) != 0 or os.geteuid() != 0:
        out.append("nproc_rlimit")
    for name in ("seccomp", "landlock", "no_caps", "no_new_privs", "rlimits", "audit_hook"):
        if applied.get(name):
            out.append(name)
    return tuple(out)


def _namespace(name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.readlink(f"/proc/self/ns/{name}").split("[")[1].rstrip("]"))
    return None


def clean_env(work: str) -> dict[str, str]:
    # Nothing of ours: no tokens, no proxies, no PYTHON* settings. One BLAS thread, since the
    # sandbox may not start threads.
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": work,
        "TMPDIR": work,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def read_capped(path: Path, limit: int) -> str:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
        if len(data) > limit:  # keep the head and the tail, like rStar's 512 + 512
            f.seek(max(0, path.stat().st_size - limit // 2))
            data = data[: limit // 2] + b"\n...\n" + f.read()
    return data.decode("utf-8", "replace")


def kill(proc: subprocess.Popen, cgroup: str | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cgroup:
        for pid in cgroup_pids(cgroup):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


# -- the run's pids cgroup (root only) -----------------------------------------------------


def make_cgroup(tasks: int) -> str | None:
    """A fresh pids cgroup allowing `tasks` tasks (the wrapper, bubblewrap's two processes
    and the code's own), or None where there is none to make."""
    root = cgroup_root()
    if root is None:
        return None
    path = Path(root) / f"rf-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max(1, tasks)))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return str(path)


def cgroup_pids(cgroup: str) -> list[int]:
    with contextlib.suppress(OSError, ValueError):
        return [int(p) for p in Path(cgroup, "cgroup.procs").read_text().split()]
    return []


def remove_cgroup(cgroup: str | None) -> None:
    if not cgroup:
        return
    for _ in range(100):  # a killed task leaves the cgroup a moment after it dies
        for pid in cgroup_pids(cgroup):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
