"""Sharing one warehouse file between processes: wait for DuckDB's lock, and hand it over.

DuckDB lets one process hold a file (a second one, even read-only, gets "Conflicting lock").
A run holds its warehouse for the whole run, so the processes take turns:
- A process that finds the file held waits for it (`connect`): it says who holds it (the PID
  and command line DuckDB reports) every few seconds, and leaves a *waiter* file beside the
  warehouse (`<file>.waiting/<pid>`) until it gets in.
- A run, at each committed point, looks for waiters (`others_waiting`); when another live
  process waits, it closes its connection, lets that one in, and waits its own turn again.
So two runs on one warehouse interleave shard by shard, and `query`, `stats` and `export`
get in between two commits of a run instead of failing.

Not here: what is read or written (`warehouse.store`).
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from reasonfactory.warehouse.errors import WarehouseError
from reasonfactory.warehouse.liveness import pid_alive

LOCK_TIMEOUT_ENV = "REASONFACTORY_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600.0  # seconds a process waits for the file before giving up
POLL = 0.05
REPORT_EVERY = 5.0
_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def lock_timeout() -> float:
    """Seconds to wait for a held warehouse: $REASONFACTORY_LOCK_TIMEOUT, else an hour."""
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        raise WarehouseError(f"${LOCK_TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def holder(message: str) -> str:
    """Who holds the lock, from DuckDB's message: `PID 123 (reasonfactory run r.yaml)`.

    >>> holder('Conflicting lock is held in /usr/bin/python3 (PID 4242). See also ...')[:9]
    'PID 4242 '
    """
    m = _HOLDER.search(message)
    if not m:
        return "another process"
    pid = m.group(2)
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        cmd = m.group(1)
    return f"PID {pid} ({_short(cmd)})"


def _short(cmd: str) -> str:
    parts = cmd.split()
    for i, part in enumerate(parts):  # `.../python .../reasonfactory run x.yaml` -> the CLI part
        if part.endswith("reasonfactory") or part.endswith("pytest"):
            return " ".join([Path(part).name, *parts[i + 1 :]])[:120]
    return cmd[:120]


def _waiting_dir(path: Path) -> Path:
    return path.with_name(path.name + ".waiting")


def others_waiting(path: Path) -> bool:
    """Whether another live process waits for this warehouse (stale waiter files are removed)."""
    folder = _waiting_dir(path)
    if not folder.exists():
        return False
    found = False
    for entry in folder.iterdir():
        pid = int(entry.name) if entry.name.isdigit() else -1
        if pid == os.getpid():
            continue
        if pid > 0 and pid_alive(pid):
            found = True
        else:
            entry.unlink(missing_ok=True)
    return found


def connect(
    path: Path,
    *,
    read_only: bool = False,
    timeout: float | None = None,
    report: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open `path`, waiting while another process holds it (see the module docstring)."""
    timeout = lock_timeout() if timeout is None else timeout
    report = report or _stderr
    started = time.monotonic()
    last_report = started - REPORT_EVERY + 1.0  # first line after ~1 s of waiting
    marker: Path | None = None
    try:
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as exc:
                if "Conflicting lock" not in str(exc):
                    raise WarehouseError(f"cannot open warehouse {path}: {exc}") from exc
                waited = time.monotonic() - started
                who = holder(str(exc))
                if waited >= timeout:
                    raise WarehouseError(
                        f"warehouse {path} is held by {who}; gave up after {waited:.0f} s "
                        f"(${LOCK_TIMEOUT_ENV} sets the wait)"
                    ) from None
                if marker is None:
                    marker = _waiting_dir(path) / str(os.getpid())
                    marker.parent.mkdir(exist_ok=True)
                    marker.touch()
                if time.monotonic() - last_report >= REPORT_EVERY:
                    last_report = time.monotonic()
                    report(f"warehouse {path} is held by {who}: waiting ({waited:.0f} s)")
                time.sleep(POLL)
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def hand_over(path: Path, grace: float = 30.0) -> None:
    """Called with the connection closed: wait until the processes that were waiting got in
    (their waiter files are gone) or `grace` seconds passed, so this process does not take
    the file straight back."""
    deadline = time.monotonic() + grace
    while others_waiting(path) and time.monotonic() < deadline:
        time.sleep(POLL)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def run_lock(
    path: Path,
    run_id: str,
    *,
    timeout: float | None = None,
    report: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold run `run_id` of the warehouse at `path` for the block: a second process on the
    same run (an overlapping cron run, the same command twice) waits here until the first
    is done, then finds its work stored, instead of doing it again beside it. The lock is
    the kernel's (`flock` on `<file>.runs/<run_id>.lock`), so a killed holder releases it.
    Only the run is held: the warehouse file itself is shared shard by shard as before.
    """
    timeout = lock_timeout() if timeout is None else timeout
    report = report or _stderr
    folder = path.with_name(path.name + ".runs")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        last_report = started - REPORT_EVERY + 1.0  # first line after ~1 s of waiting
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                who = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "a process"
                if waited >= timeout:
                    raise WarehouseError(
                        f"run {run_id} is being run by {who}; gave up after {waited:.0f} s "
                        f"(${LOCK_TIMEOUT_ENV} sets the wait)"
                    ) from None
                if time.monotonic() - last_report >= REPORT_EVERY:
                    last_report = time.monotonic()
                    report(f"run {run_id} is being run by {who}: waiting ({waited:.0f} s)")
                time.sleep(POLL * 4)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({_short(_own_command())})".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _own_command() -> str:
    try:
        return Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return " ".join(sys.argv)
