"""Run untrusted Python (code-augmented steps) in a subprocess sandbox; results as data.

`run_python(code, context)` runs the ancestors' code (`context`, output discarded) and then
the step's code in a fresh `python -I -B` process and returns an `ExecutionResult`. It never
raises for anything the code does; it raises `SandboxError` when the machine cannot confine
the run (then nothing ran). The layers (`sandbox_launch.py` starts the process,
`sandbox_child.py` confines it), each tested in tests/test_sandbox*.py:
- bubblewrap: its own user, mount, pid, network, ipc, uts and cgroup namespaces; a read-only
  view of the interpreter and system libraries; one writable folder, a size-limited tmpfs
  that vanishes with the run; no host process, path, socket or network; every process the
  code made dies with the namespace at the deadline (`setsid` ones too);
- a process cap: a pids cgroup (root) or RLIMIT_NPROC inside the user namespace (a non-root
  user); by default no process or thread besides the code's own;
- seccomp: no socket of any family, no io_uring, ptrace, mount, bpf, perf, keyring, module
  or namespace calls (`sandbox_kernel.py`);
- rlimits: CPU seconds, address space (memory), file size, open files, no core files; no
  capabilities, no_new_privs; a scrubbed environment;
- an audit hook (PEP 578) that refuses process creation, sockets, ctypes, writes outside the
  folder and reads outside the allowed ones, with a `sandbox: denied ...` line each: not a
  boundary (C code raises no audit event), it makes refusals legible.
Without bubblewrap, seccomp or a process cap (`sandbox_layers.weak_layers`) `run_python`
refuses, naming what is missing, unless the caller accepts the risk with `allow_weak=True`
(recipe: `generate: {sandbox: {allow_weak: true}}`); then Landlock confines files where the
kernel has it. `ExecutionResult.layers` is what the child reported it ran under.
This is not a VM: a kernel bug is still a way out.

Working folders outside bubblewrap are named `rf-sandbox-PID-*` (PID: the process that made
them); the first run of a process removes those a dead process of the same user left behind.
rStar-Math runs model code in-process with `exec` and a timeout decorator; we do not.
Not here: deciding whether a step is right (`reasonfactory.generators.verify.steps.check_code`)
or a program passes its tests (`code_tests.py`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reasonfactory.generators.verify.sandbox_launch import Limits, RawRun, launch
from reasonfactory.generators.verify.sandbox_layers import (
    cgroup_root,
    describe_isolation,
    isolation,
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
    "run_job",
    "run_many",
    "run_python",
    "weak_layers",
]

EXIT_RAISED, EXIT_MEMORY, EXIT_SETUP = 1, 3, 4
DENIED = "sandbox: denied "
DEFAULT_LIMITS = Limits()
ALL_LAYERS = {"bwrap": True, "seccomp": True, "cgroup": True, "landlock": True, "audit": True}


class SandboxError(UserError):
    """The sandbox could not confine a run (a machine or configuration problem, never the
    code's doing): nothing was run, and running it unconfined is not an option."""


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
    layers: tuple[str, ...] = ()  # what the child reported it ran under

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


def run_job(
    job: dict,
    limits: Limits = DEFAULT_LIMITS,
    *,
    layers: dict | None = None,
    allow_weak: bool = False,
    results: bool = False,
) -> RawRun:
    """Run one job in a fresh sandbox (a code step, or a program and its tests); refuse
    (`SandboxError`) without the strong layers unless `allow_weak`. `layers` turns layers off
    for tests of each layer alone (`{"bwrap": False, "seccomp": False, "cgroup": False,
    "landlock": False, "audit": False}`); by default every layer the machine has is on."""
    want = {**ALL_LAYERS, **(layers or {})}
    missing = weak_layers(want)
    if missing and not allow_weak:
        raise SandboxError(
            f"code verification refused: this sandbox would run without {' and '.join(missing)};"
            " hostile code could then reach files, processes or sockets this process can. Run "
            "where they exist, or accept the risk with `sandbox: {allow_weak: true}` under "
            "`generate:` (a recipe) or --allow-weak (a command)"
        )
    remove_leftovers()
    raw = launch(job, limits, want, results=results)
    if not raw.confined and not raw.timed_out:
        raise SandboxError(f"the sandbox could not confine the run: {raw.stderr.strip()[-500:]}")
    return raw


def run_python(
    code: str,
    context: str = "",
    limits: Limits = DEFAULT_LIMITS,
    *,
    layers: dict | None = None,
    allow_weak: bool = False,
) -> ExecutionResult:
    """Run `context` (output discarded) then `code` in a fresh sandboxed interpreter.

    >>> run_python("print(s + 1)", context="s = 41").stdout
    '42\\n'
    """
    raw = run_job({"context": context, "code": code}, limits, layers=layers, allow_weak=allow_weak)
    code_ = raw.exit_code
    cpu_killed = code_ in (-signal.SIGXCPU, -signal.SIGKILL) and not raw.timed_out
    denied = tuple(
        line.removeprefix(DENIED) for line in raw.stderr.splitlines() if line.startswith(DENIED)
    )
    return ExecutionResult(
        ok=code_ == 0 and not raw.timed_out and not denied,
        stdout=raw.stdout,
        stderr=raw.stderr,
        exit_code=code_,
        timed_out=raw.timed_out or cpu_killed,
        memory_exceeded=code_ == EXIT_MEMORY or "MemoryError" in raw.stderr,
        file_too_large=code_ == -signal.SIGXFSZ or "File too large" in raw.stderr,
        denied=denied,
        seconds=raw.seconds,
        layers=raw.layers,
    )


def run_many(
    jobs: list[tuple[str, str]],
    limits: Limits = DEFAULT_LIMITS,
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
