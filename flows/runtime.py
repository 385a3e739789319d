"""Process settings for Prefect, applied by the CLI before Prefect is imported.

Nothing here runs on import: `configure_prefect()` sets defaults in `os.environ` (a value the
user set wins) and is called by `reasonfactory.flows.cli.main`. A notebook or a test that drives
the flows directly calls it itself, or sets what it needs.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress

DEFAULTS = {
    # Prefect's telemetry fails without internet and sometimes locks its SQLite file.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Library modules log progress under `reasonfactory.*` (e.g. tree search rounds); show it
    # with Prefect's own logs, in the terminal and the UI.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "reasonfactory",
    # Outside a flow run (a generator called from a notebook or a test) those logs stay local.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # `datasets` draws a tqdm bar per save/map; the CLI shows its own progress.
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


class HideHandledErrors(logging.Filter):
    """Drops Prefect's task and flow run records about an error the CLI reports itself:
    a `UserError` (bad input or configuration: the CLI's `error:` line), and, once Ctrl-C was
    pressed, the shards it cancelled and the flow's "Crash detected" (the CLI's one
    `interrupted:` line). A traceback stays for what is a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        from reasonfactory.flows.interrupts import PRESSED
        from reasonfactory.warehouse.errors import UserError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, UserError) and not PRESSED.is_set()


# The CLI's quiet console: no "Task run ... Completed()" per task, no flow-run lines, no
# temporary-server notice. The bar and the summary say what happened; `--verbose` brings the
# logs back. A value the user set in the environment still wins.
QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
}


def set_console_logs(verbose: bool) -> None:
    """Quiet Prefect's per-task and per-flow log lines (and ours), or, verbose, show them.

    Call before Prefect is imported (its logging is configured on import).

    >>> sorted(QUIET)[0]
    'PREFECT_LOGGING_LEVEL'
    """
    if verbose:
        for key in QUIET:
            if key != "PREFECT_LOGGING_LEVEL":
                os.environ[key] = "INFO"
        logging.getLogger("reasonfactory").setLevel(logging.INFO)
        return
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    logging.getLogger("reasonfactory").setLevel(logging.WARNING)


def configure_prefect() -> None:
    """Set the defaults above where the environment has no value of its own.

    >>> configure_prefect(); os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] in ("false", "true")
    True
    """
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("reasonfactory").setLevel(logging.INFO)
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideHandledErrors) for f in logger.filters):
            logger.addFilter(HideHandledErrors())


@contextmanager
def temporary_api(startup_timeout_s: float = 60.0):
    """A Prefect API for this process while the block runs, when none is configured.

    Prefect's own ephemeral server outlives a `kill -9` of its parent (~200 MB and an open
    port each time) and shares the terminal's process group, so Ctrl-C stops it first and
    Prefect then retries its crash report against it for a minute. This one runs in its own
    session (Ctrl-C reaches only the CLI, which reports to a live server and exits), is
    stopped when the block ends (after Prefect's log and event workers are drained), and
    is killed by the kernel (PR_SET_PDEATHSIG) when its parent dies, also on SIGKILL.
    With PREFECT_API_URL set, the block uses that server and starts nothing.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield None
        return
    import prefect.context

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    server = [
        *("-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *server],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(proc, url, startup_timeout_s)
        with (
            temporary_settings(updates={PREFECT_API_URL: url}),
            prefect.context._temporary_global_settings_context(
                prefect.context.get_settings_context()
            ),
        ):
            try:
                yield url
            finally:
                _drain_prefect_workers()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Runs first in the server's process: ask the kernel for SIGKILL when the parent dies, make
# sure the parent is still the one that started us (it may have died in between), then
# become the server (the death signal survives exec). SIGKILL, not SIGTERM: with its parent
# gone nobody waits for a graceful stop, and uvicorn's graceful stop took over 10 s under
# load in CI (SQLite, Prefect's database, is safe against a kill).
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Prefect's temporary server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Prefect's temporary server at {url} did not start in {timeout_s:.0f} s")


def _drain_prefect_workers(timeout_s: float = 5.0) -> None:
    """Send Prefect's buffered logs and events while the server still listens."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with suppress(RuntimeError):  # never started
            worker.drain_all(timeout=timeout_s)
