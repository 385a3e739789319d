"""Which sandbox layers this machine offers, probed once per process, and bubblewrap's command.

`isolation()` says, layer by layer, what a sandboxed run (`sandbox.run_python`,
`code_tests.verify_many`) can get here:
- `bwrap`: Debian's bubblewrap runs the child in its own user, mount, pid, network, ipc, uts
  and cgroup namespaces (`bwrap_argv`): a read-only view of the interpreter and the system
  libraries, a size-limited tmpfs as its only writable folder, no host path it was not
  given, no host process, no network, no host Unix socket;
- `seccomp`: the child's own syscall filter (`sandbox_kernel.py`);
- `pids_cgroup`: a pids cgroup the run's processes join (root, where RLIMIT_NPROC does not
  bind); `nproc_userns`: RLIMIT_NPROC inside bubblewrap's user namespace (a non-root user:
  there it counts only the sandbox's own processes);
- `landlock`: the child's Landlock ruleset, used only where bubblewrap cannot run;
- `audit_hook`: always.
`weak_layers` names the strong layers (bubblewrap, seccomp, a process cap) a run would lack,
so the runner can refuse to run without them. What a run actually got is not this: the
child reports it (`sandbox.ExecutionResult.layers`).

Not here: running code, making or removing a run's cgroup (`sandbox_launch.py`); installing
the layers in the child (`sandbox_child.py`, `sandbox_kernel.py`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

# Where the child's own files and its writable folder appear inside bubblewrap.
INNER_CODE = "/rf"
INNER_WORK = "/sandbox"
SANDBOX_UID = 65534  # "nobody" inside the user namespace: no capabilities there
CHILD_FILES = ("sandbox_child.py", "sandbox_kernel.py", "sandbox_harness.py")


@functools.cache
def isolation() -> dict[str, bool]:
    """Which layers this machine gives a sandboxed run (probed once per process).

    >>> sorted(isolation())
    ['audit_hook', 'bwrap', 'landlock', 'nproc_userns', 'pids_cgroup', 'seccomp']
    """
    bwrap = bwrap_usable()
    return {
        "bwrap": bwrap,
        "seccomp": seccomp_available(),
        "pids_cgroup": cgroup_root() is not None,
        "nproc_userns": bwrap and os.geteuid() != 0,
        "landlock": landlock_abi() > 0,
        "audit_hook": True,
    }


def describe_isolation() -> str:
    """One line on what this machine offers a sandboxed run, and what is missing (what a run
    actually got is in its `ExecutionResult.layers`).

    >>> "audit_hook" in describe_isolation()
    True
    """
    have = [name for name, on in isolation().items() if on]
    missing = weak_layers()
    line = ", ".join(have)
    return line + (f" (weak: no {' and no '.join(missing)})" if missing else "")


def weak_layers(layers: dict | None = None) -> list[str]:
    """The strong layers a run would lack (with `layers` turning some off); [] when the
    machine gives them all.

    >>> weak_layers({"bwrap": False, "seccomp": False, "cgroup": False})[:2]
    ['bubblewrap (mount, pid and network namespaces: apt-get install bubblewrap)', 'seccomp filter']
    """
    want = {"bwrap": True, "seccomp": True, "cgroup": True, **(layers or {})}
    have = isolation()
    missing = []
    bwrap = want["bwrap"] and have["bwrap"]
    if not bwrap:
        missing.append("bubblewrap (mount, pid and network namespaces: apt-get install bubblewrap)")
    if not (want["seccomp"] and have["seccomp"]):
        missing.append("seccomp filter")
    cap = (want["cgroup"] and have["pids_cgroup"]) or (bwrap and os.geteuid() != 0)
    if not cap:
        missing.append("a process cap (a writable pids cgroup as root, bubblewrap otherwise)")
    return missing


# -- bubblewrap ------------------------------------------------------------------------------


@functools.cache
def bwrap_path() -> str | None:
    return shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.path.exists(p)), None
    )


def bwrap_argv(tmpfs_mb: int, code_dir: str) -> list[str]:
    """The bubblewrap command (up to the program) for one run.

    Every namespace bubblewrap has, a user namespace in which the child is uid 65534 (no
    capabilities, and none regained: no nested user namespace), a new session (no terminal
    injection), SIGKILL when the runner dies; read-only: /usr, the interpreter's prefixes and
    import folders, ld.so's cache and the child's own three files; a fresh /proc (its own
    processes only) and a minimal /dev, both read-only; one writable folder, a tmpfs of
    `tmpfs_mb` that vanishes with the run. The root is read-only.
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
    argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    argv += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin", "/lib32", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for root in python_roots():
        argv += ["--ro-bind", root, root]
    for name in CHILD_FILES:
        argv += ["--ro-bind", os.path.join(code_dir, name), f"{INNER_CODE}/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", str(tmpfs_mb * 2**20), "--tmpfs", INNER_WORK]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", INNER_WORK]
    return argv


@functools.cache
def python_path() -> tuple[str, ...]:
    """The import folders `python -I` gets here (the standard library, site-packages and
    what .pth files add), as real folders. The child starts with `-S` and is given these
    instead, so site's .pth processing (an editable install's import hook: ~30 ms) is not
    paid at every run."""
    found: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        probe = subprocess.run(
            [sys.executable, "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
            capture_output=True,
            timeout=60,
            text=True,
        )
        found = json.loads(probe.stdout)
    return tuple(dict.fromkeys(p for p in found if p and os.path.isdir(p)))


@functools.cache
def python_roots() -> tuple[str, ...]:
    """The folders bubblewrap shows the child read-only: the interpreter's prefixes and
    `python_path()`, outside /usr, none beneath another."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(python_path())
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    kept: list[str] = []
    for path in real:  # sorted: a folder comes before what lies beneath it
        if path == "/" or path.startswith("/usr/") or path == "/usr":
            continue
        if not any(path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return tuple(kept)


@functools.cache
def bwrap_usable() -> bool:
    """Whether bubblewrap runs the interpreter here with every namespace (it needs user
    namespaces: some containers forbid them)."""
    if bwrap_path() is None or not sys.platform.startswith("linux"):
        return False
    code_dir = os.path.dirname(os.path.abspath(__file__))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run(
            [*bwrap_argv(8, code_dir), sys.executable, "-I", "-B", "-S", "-c", "pass"],
            capture_output=True,
            timeout=60,
        )
        return probe.returncode == 0
    return False


# -- kernel features -------------------------------------------------------------------------


@functools.cache
def seccomp_available() -> bool:
    """Whether the child can install its syscall filter (Linux on x86_64 or aarch64)."""
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
