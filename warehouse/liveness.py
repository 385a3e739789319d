"""Whether the process that started a run still runs: `runs.owner` and the `crashed` status.

A run is `running` from its start until its flow records the end; a process killed with
`kill -9` (or a lost machine) never records it. `runs.owner` names the process that runs it
(host, pid and the pid's start time, so a recycled pid is not mistaken for it); a reader on
the same host can then tell `crashed` from `running`. On another host the owner cannot be
checked from here, and the stored status is shown as it is.

Not here: taking a run over (a re-run of the same recipe simply resumes it, as always).
"""

from __future__ import annotations

import os
import socket


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts).

    >>> pid_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_owner(pid: int | None = None) -> str:
    """`host:pid:start` for this process (or `pid` on this host).

    >>> process_owner().split(":")[1] == str(os.getpid())
    True
    """
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str | None) -> bool | None:
    """True/False for an owner on this host; None when it cannot be told (other host, none).

    >>> owner_alive(process_owner()), owner_alive(None), owner_alive("elsewhere:1:0")
    (True, None, None)
    """
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _start_time(int(pid)) == start != ""


def effective_status(status: str | None, owner: str | None) -> str | None:
    """`crashed` for a `running` run whose owner is provably gone, else `status`."""
    if status == "running" and owner_alive(owner) is False:
        return "crashed"
    return status


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces and parentheses, so count from
    # the last ')'.
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()
