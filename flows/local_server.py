"""One local Prefect server for every command of a user, started once, stopped when idle.

Every command that runs a flow needs a Prefect API. With `PREFECT_API_URL` set, the user's
server is used and nothing is started. Otherwise the first such command starts a local
server (loopback only, Prefect's database in `PREFECT_HOME` as always) in its own session,
records it in `PREFECT_HOME/reasonfactory-server.json` (pid, port, the pid's start time),
and every later command reuses it: starting one costs 5-40 s on 2 cores, reusing it nothing.

The server stops by itself once no command has used it for `REASONFACTORY_SERVER_IDLE`
seconds (default 900): each command touches `reasonfactory-server.used` when it starts,
every few seconds while it runs and when it ends, and the server's own watchdog reads that
file. So a command killed with `kill -9` leaves a server that nobody owns for at most the
idle time, and so does removing its `PREFECT_HOME` (a temporary one) while it runs.
`reasonfactory server status|stop` shows or stops it (`stop` only a process whose pid and
start time are the ones recorded: never another process that got its pid).

Not here: Prefect's logging and settings for the CLI (flows/runtime.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

IDLE_ENV = "REASONFACTORY_SERVER_IDLE"
DEFAULT_IDLE_S = 900.0
HEARTBEAT_S = 5.0
STATE = "reasonfactory-server.json"
USED = "reasonfactory-server.used"
LOCK = "reasonfactory-server.lock"


def idle_seconds() -> float:
    """Seconds of disuse after which the server stops: $REASONFACTORY_SERVER_IDLE or 900."""
    from reasonfactory.warehouse.errors import UserError

    value = os.environ.get(IDLE_ENV)
    try:
        seconds = float(value) if value else DEFAULT_IDLE_S
    except ValueError:
        raise UserError(f"${IDLE_ENV}={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UserError(f"${IDLE_ENV}={value!r}: expected a positive number of seconds")
    return seconds


def home() -> Path:
    """Where Prefect keeps its database, and where the server is recorded."""
    from prefect.settings import PREFECT_HOME

    folder = Path(PREFECT_HOME.value()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def prefect_api(startup_timeout_s: float = 120.0) -> Iterator[str | None]:
    """A Prefect API for the block: the user's (`PREFECT_API_URL`: nothing is started), or
    the shared local server, started when none runs. Yields its URL (None for the user's)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield None
        return
    import prefect.context

    url = ensure_server(startup_timeout_s)
    beat = _Heartbeat(home() / USED)
    with (
        beat,
        temporary_settings(updates={PREFECT_API_URL: url}),
        prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()),
    ):
        try:
            yield url
        finally:
            _drain_prefect_workers()


def ensure_server(startup_timeout_s: float = 120.0) -> str:
    """The URL of the running local server, after starting one if none answers."""
    folder = home()
    with _locked(folder / LOCK):
        state = read_state(folder)
        if state and _healthy(state["url"]):
            (folder / USED).touch()  # before the lock is let go: the server sees it (_SERVER)
            return state["url"]
        return _start(folder, startup_timeout_s)


def read_state(folder: Path | None = None) -> dict | None:
    """The recorded server, if its process is still the one recorded."""
    folder = folder or home()
    try:
        state = json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if _same_process(state) else None


def stop_server(folder: Path | None = None, timeout_s: float = 10.0) -> dict | None:
    """Stop the recorded server (only the very process recorded); returns its state."""
    folder = folder or home()
    if not (folder / STATE).exists():
        return None
    with _locked(folder / LOCK):
        state = read_state(folder)
        if state is None:
            return None
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _same_process(state) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _same_process(state):
            os.kill(state["pid"], signal.SIGKILL)
        (folder / STATE).unlink(missing_ok=True)
        return state


def _start(folder: Path, startup_timeout_s: float) -> str:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_HOME": str(folder),
    }
    env.pop("PREFECT_API_URL", None)
    (folder / USED).touch()
    log = open(folder / "reasonfactory-server.log", "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-c", _SERVER, str(port), str(folder / USED)),
            *(str(idle_seconds()), str(folder / LOCK), str(folder / STATE)),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # Ctrl-C in the terminal reaches the command, not the server
    )
    log.close()
    deadline = time.monotonic() + startup_timeout_s
    while not _healthy(url):
        if proc.poll() is not None:
            raise RuntimeError(
                f"the local Prefect server exited with code {proc.returncode}; see "
                f"{folder / 'reasonfactory-server.log'}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(
                f"the local Prefect server did not start in {startup_timeout_s:.0f} s"
            )
        time.sleep(0.1)
    (folder / USED).touch()
    from reasonfactory.warehouse.liveness import process_owner

    state = {"pid": proc.pid, "owner": process_owner(proc.pid), "port": port, "url": url}
    tmp = folder / (STATE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(folder / STATE)
    return url


# The server process: Prefect's API app under uvicorn, and a watchdog that asks it to stop
# once the commands' heartbeat file is older than the idle time.
_SERVER = """
import fcntl, os, sys, threading, time
import uvicorn
port, used, idle, lock, state = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), *sys.argv[4:6]
config = uvicorn.Config("prefect.server.api.server:create_app", factory=True,
                        host="127.0.0.1", port=port, log_level="error")
server = uvicorn.Server(config)
def quiet(up):
    try:
        return time.time() - max(os.stat(used).st_mtime, up)
    except OSError:
        return time.time() - up
def watch():
    while not server.started:  # a slow start is no idle time
        time.sleep(0.2)
    up = time.time()
    while not server.should_exit:
        time.sleep(min(5.0, idle / 4))
        if quiet(up) < idle:
            continue
        # Under the commands' lock: a command that found this server has touched `used`
        # before it let go of the lock, so it is either seen here or finds no server.
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # its folder was removed: no command can find this server again
            server.should_exit = True
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if quiet(up) >= idle:
                try:
                    os.unlink(state)
                except OSError:
                    pass
                server.should_exit = True
        finally:
            os.close(fd)
threading.Thread(target=watch, daemon=True).start()
server.run()
"""


class _Heartbeat:
    """Touches the server's heartbeat file while a command runs."""

    def __init__(self, path: Path):
        self.path = path
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="server-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            with suppress(OSError):
                self.path.touch()
            if self.stop.wait(HEARTBEAT_S):
                return

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two commands starting at once start one server (the kernel's lock; freed on a kill)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _same_process(state: dict) -> bool:
    from reasonfactory.warehouse.liveness import owner_alive

    return owner_alive(state.get("owner")) is True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drain_prefect_workers(timeout_s: float = 5.0) -> None:
    """Send Prefect's buffered logs and events while the server still listens."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with suppress(RuntimeError):  # never started
            worker.drain_all(timeout=timeout_s)
