"""Run untrusted Python (code-augmented steps) in a subprocess sandbox; results as data.

`run_python(code, context)` runs the ancestors' code (`context`, output discarded) and then
the step's code in a fresh `python -I -B` process and returns an `ExecutionResult`. It never
raises for anything the code does; it raises `SandboxError` when the machine cannot confine
the run (then nothing ran). Layers, each tested on its own in tests/test_sandbox.py:
- a throwaway working folder (removed afterwards) and a scrubbed environment: no variable of
  ours reaches the code;
- wall-clock timeout: the whole process group is killed;
- rlimits: CPU seconds, address space (memory), file size, open files, no core files; no
  processes or threads (RLIMIT_NPROC = 0 for a non-root user; as root, where that limit does
  not apply, a pids cgroup with `pids.max` = `Limits.processes`);
- every capability dropped and no_new_privs (running as root keeps uid 0 but no powers);
- a network namespace of its own (`unshare --net`, or `--user --map-root-user --net` for a
  non-root user) when the machine allows it: no interface but a down loopback;
- Landlock (Linux >= 5.13), kernel-enforced: read-only beneath the interpreter's folders and
  the system libraries, read-write beneath the working folder only; no TCP bind/connect;
- seccomp: `socket()`/`socketpair()` fail for every address family, so pathname Unix
  sockets (which neither Landlock nor the network namespace covers) cannot be reached
  (why seccomp rather than a bubblewrap mount namespace: see sandbox_child.py);
- an audit hook (PEP 578) that refuses process creation, sockets, ctypes, writes outside
  the folder and reads outside the allowed ones, with a `sandbox: denied ...` line each.
`isolation()` says which layers this machine provides (`sandbox_layers` probes the kernel,
once per process). The kernel layers are the boundary; the audit hook alone is not one
(CPython says so: C-level I/O such as duckdb's or sqlite3's raises no audit event), it makes
refusals legible. So without Landlock (an older kernel,
some containers) `run_python` refuses to run, naming what is missing, unless the caller
accepts the risk with `allow_weak=True` (recipe: `generate: {sandbox: {allow_weak: true}}`).
This is not a VM: for adversarial code at scale, run the whole pipeline in a container or
gVisor as well.

Working folders are named `rf-sandbox-PID-*` (PID: the process that made them); the first
run of a process removes those a dead process of the same user left behind (a killed run).

rStar-Math runs model code in-process with `exec` and a timeout decorator; we do not.
Not here: deciding whether a step is right (`reasonfactory.generators.verify.steps.check_code`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reasonfactory.generators.verify.sandbox_layers import (
    cgroup_root,
    describe_isolation,
    isolation,
    unshare_prefix,
    weak_layers,
)
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.liveness import pid_alive

# Callers ask the runner what it offers: `isolation` and `describe_isolation` are its answer.
__all__ = [
    "ExecutionResult",
    "Limits",
    "SandboxError",
    "describe_isolation",
    "isolation",
    "remove_leftovers",
    "run_many",
    "run_python",
    "weak_layers",
]

CHILD = Path(__file__).with_name("sandbox_child.py")
EXIT_RAISED, EXIT_MEMORY, EXIT_SETUP = 1, 3, 4
DENIED = "sandbox: denied "


class SandboxError(UserError):
    """The sandbox could not confine a run (a machine or configuration problem, never the
    code's doing): nothing was run, and running it unconfined is not an option."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. `processes` counts tasks in the pids cgroup (root only)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 512
    file_mb: int = 8
    open_files: int = 64
    processes: int = 1
    output_chars: int = 4096


@dataclass(frozen=True)
class ExecutionResult:
    ok: bool
    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool = False
    memory_exceeded: bool = False
    file_too_large: bool = False
    denied: tuple[str, ...] = ()
    seconds: float = 0.0

    def summary(self) -> str:
        """One line on what went wrong (or what it printed)."""
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s"
        if self.memory_exceeded:
            return "memory limit exceeded"
        if self.file_too_large:
            return "file size limit exceeded"
        if self.denied:
            return "refused by the sandbox: " + "; ".join(self.denied[:3])
        if not self.ok:
            lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
            return lines[-1][:300] if lines else f"exit status {self.exit_code}"
        return self.stdout.strip()[-300:]


def run_python(
    code: str,
    context: str = "",
    limits: Limits = Limits(),
    *,
    layers: dict | None = None,
    allow_weak: bool = False,
) -> ExecutionResult:
    """Run `context` (output discarded) then `code` in a fresh sandboxed interpreter.

    `layers` turns layers off for tests of each layer alone (`{"netns": False, "landlock":
    False, "seccomp": False, "audit": False, "cgroup": False}`); by default every layer the
    machine has is on. Without Landlock and seccomp it refuses (`SandboxError`) unless
    `allow_weak`.

    >>> run_python("print(s + 1)", context="s = 41").stdout
    '42\\n'
    """
    want = {
        "netns": True,
        "landlock": True,
        "seccomp": True,
        "audit": True,
        "cgroup": True,
        **(layers or {}),
    }
    have = isolation()
    missing = weak_layers(want)
    if missing and not allow_weak:
        raise SandboxError(
            f"code verification refused: this sandbox would run without {' and '.join(missing)};"
            " hostile code could then change files or reach sockets this process can. Run on "
            "a kernel that has them, or accept the risk with `sandbox: {allow_weak: true}` "
            "under `generate:`"
        )
    remove_leftovers()
    work = tempfile.mkdtemp(prefix=f"rf-sandbox-{os.getpid()}-")
    outdir = tempfile.mkdtemp(prefix=f"rf-sandbox-out-{os.getpid()}-")
    cgroup = _make_cgroup(limits.processes) if want["cgroup"] else None
    status_read, status_write = os.pipe()
    config = {
        "work": work,
        "status_fd": status_write,
        "limits": {
            "cpu_seconds": max(1, int(limits.cpu_seconds)),
            "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb,
            "open_files": limits.open_files,
        },
        "layers": {
            "cgroup": cgroup,
            "landlock": want["landlock"] and have["landlock"],
            "seccomp": want["seccomp"] and have["seccomp"],
            "audit": want["audit"],
        },
    }
    prefix = (unshare_prefix() or []) if want["netns"] else []
    cmd = [*prefix, sys.executable, "-I", "-B", str(CHILD), json.dumps(config)]
    job = json.dumps({"context": context, "code": code})
    started = time.perf_counter()
    timed_out = False
    try:
        with open(Path(outdir) / "out", "wb") as out, open(Path(outdir) / "err", "wb") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=work,
                env=_clean_env(work),
                start_new_session=True,
                close_fds=True,
                pass_fds=(status_write,),
            )
            os.close(status_write)
            status_write = None
            try:
                proc.communicate(job.encode(), timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(proc, cgroup)
                proc.wait()
            except BaseException:
                _kill(proc, cgroup)
                proc.wait()
                raise
        seconds = time.perf_counter() - started
        stdout = _read(Path(outdir) / "out", limits.output_chars)
        stderr = _read(Path(outdir) / "err", limits.output_chars)
        confined = os.read(status_read, 16) == b"confined"
    finally:
        for fd in (status_read, status_write):
            if fd is not None:
                os.close(fd)
        _remove_cgroup(cgroup)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)
    code_ = proc.returncode
    if not confined and not timed_out:
        raise SandboxError(f"the sandbox could not confine the run: {stderr.strip()[-500:]}")
    cpu_killed = code_ in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out
    denied = tuple(
        line.removeprefix(DENIED) for line in stderr.splitlines() if line.startswith(DENIED)
    )
    memory = code_ == EXIT_MEMORY or "MemoryError" in stderr
    too_large = code_ == -signal.SIGXFSZ
    return ExecutionResult(
        ok=code_ == 0 and not timed_out and not denied,
        stdout=stdout,
        stderr=stderr,
        exit_code=code_,
        timed_out=timed_out or cpu_killed,
        memory_exceeded=memory,
        file_too_large=too_large,
        denied=denied,
        seconds=seconds,
    )


def run_many(
    jobs: list[tuple[str, str]],
    limits: Limits = Limits(),
    workers: int | None = None,
    *,
    allow_weak: bool = False,
) -> list[ExecutionResult]:
    """Run `(context, code)` jobs, several sandboxes at once; results in job order."""
    if not jobs:
        return []
    workers = workers or max(1, min(len(jobs), (os.cpu_count() or 2) * 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(lambda job: run_python(job[1], job[0], limits, allow_weak=allow_weak), jobs)
        )


_LEFTOVER = re.compile(r"rf-sandbox-(?:out-)?(\d+)-[A-Za-z0-9_]+")


@functools.cache
def remove_leftovers(folder: str | None = None) -> list[str]:
    """Remove the `rf-sandbox-PID-*` working folders (and pids cgroups) that a killed process
    left behind; once per process. Only what is provably ours goes: the name we give, owned
    by this user, a real folder (not a link), and its PID no longer running."""
    removed = []
    base = Path(folder or tempfile.gettempdir())
    places = [(base, True)] + ([(Path(cgroup_root()), False)] if cgroup_root() else [])
    for place, is_tmp in places:
        with contextlib.suppress(OSError):
            for entry in place.iterdir():
                m = _LEFTOVER.fullmatch(entry.name)
                if m is None or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
                    continue
                with contextlib.suppress(OSError):
                    st = entry.lstat()
                    if not stat.S_ISDIR(st.st_mode) or (is_tmp and st.st_uid != os.geteuid()):
                        continue
                    if is_tmp:
                        shutil.rmtree(entry)
                    else:
                        entry.rmdir()  # an empty cgroup: its tasks died with the run
                    removed.append(str(entry))
    return removed


def _clean_env(work: str) -> dict[str, str]:
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


def _read(path: Path, limit: int) -> str:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
        if len(data) > limit:  # keep the head and the tail, like rStar's 512 + 512
            f.seek(max(0, path.stat().st_size - limit // 2))
            data = data[: limit // 2] + b"\n...\n" + f.read()
    return data.decode("utf-8", "replace")


def _kill(proc: subprocess.Popen, cgroup: str | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cgroup:
        for pid in _cgroup_pids(cgroup):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


# -- the run's pids cgroup (root only) -----------------------------------------------------


def _make_cgroup(processes: int) -> str | None:
    root = cgroup_root()
    if root is None:
        return None
    path = Path(root) / f"rf-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max(1, processes)))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return str(path)


def _cgroup_pids(cgroup: str) -> list[int]:
    with contextlib.suppress(OSError, ValueError):
        return [int(p) for p in Path(cgroup, "cgroup.procs").read_text().split()]
    return []


def _remove_cgroup(cgroup: str | None) -> None:
    if not cgroup:
        return
    for _ in range(50):  # a killed task leaves the cgroup a moment after it dies
        for pid in _cgroup_pids(cgroup):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
