"""Which sandbox layers this machine's kernel offers, probed once per process.

`isolation()` says, layer by layer, what a sandboxed run (`sandbox.run_python`) gets here:
its own network namespace (`unshare`), Landlock file confinement (Linux >= 5.13), the
seccomp socket filter, a pids cgroup (root only), RLIMIT_NPROC (non-root only) and the audit
hook (always). `weak_layers` names the kernel layers that `code` verification needs and this
machine lacks, so the runner can refuse to run without them. Each probe is cached: a
kernel's features do not change while a process runs.

Not here: running code, making or removing a run's cgroup, the refusal itself
(`reasonfactory.generators.verify.sandbox`); installing the layers in the child
(`sandbox_child.py`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path


@functools.cache
def isolation() -> dict[str, bool]:
    """Which layers this machine gives a sandboxed run (probed once per process).

    >>> sorted(isolation())
    ['audit_hook', 'landlock', 'netns', 'pids_cgroup', 'rlimit_nproc', 'seccomp']
    """
    return {
        "netns": unshare_prefix() is not None,
        "landlock": landlock_abi() > 0,
        "seccomp": seccomp_available(),
        "pids_cgroup": cgroup_root() is not None,
        "rlimit_nproc": os.geteuid() != 0,
        "audit_hook": True,
    }


def describe_isolation() -> str:
    """One line for a run summary: the layers a sandboxed run gets here, and what is missing.

    >>> "audit_hook" in describe_isolation()
    True
    """
    have = [name for name, on in isolation().items() if on]
    missing = weak_layers()
    line = ", ".join(have)
    return line + (f" (weak: no {' and no '.join(missing)})" if missing else "")


def weak_layers(layers: dict | None = None) -> list[str]:
    """The kernel layers a run would lack that `code` verification needs (file confinement
    and the socket filter); [] when the machine gives them all.

    >>> weak_layers({"landlock": False, "seccomp": False})
    ['Landlock (kernel file confinement, Linux >= 5.13)', 'seccomp socket filter']
    """
    want = {"landlock": True, "seccomp": True, **(layers or {})}
    have = isolation()
    missing = []
    if not (want["landlock"] and have["landlock"]):
        missing.append("Landlock (kernel file confinement, Linux >= 5.13)")
    if not (want["seccomp"] and have["seccomp"]):
        missing.append("seccomp socket filter")
    return missing


@functools.cache
def unshare_prefix() -> list[str] | None:
    """The command prefix that gives a run its own network namespace, or None."""
    unshare = shutil.which("unshare") or next(
        (p for p in ("/usr/bin/unshare", "/bin/unshare") if os.path.exists(p)), None
    )
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    options = [["--net"]] if os.geteuid() == 0 else []
    options.append(["--user", "--map-root-user", "--net"])
    for opts in options:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            probe = subprocess.run(
                [unshare, *opts, sys.executable, "-I", "-S", "-c", "pass"],
                capture_output=True,
                timeout=30,
            )
            if probe.returncode == 0:
                return [unshare, *opts]
    return None


@functools.cache
def seccomp_available() -> bool:
    """Whether the child can install its socket filter (Linux on x86_64 or aarch64)."""
    return sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "aarch64")


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (`landlock_create_ruleset` with the version flag);
    0 without Landlock."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return max(0, int(libc.syscall(444, None, 0, 1)))
    except (OSError, AttributeError):
        return 0


@functools.cache
def cgroup_root() -> str | None:
    """A pids-cgroup folder we may create children in (root only), or None."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return None
    candidates = ["/sys/fs/cgroup/pids"]
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidates.append("/sys/fs/cgroup" + line[3:].rstrip("/"))
    for root in candidates:
        probe = Path(root) / f"rf-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            if (probe / "pids.max").exists():
                (probe / "pids.max").write_text("1")
                return root
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None
