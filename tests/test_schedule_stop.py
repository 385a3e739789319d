"""`reasonfactory schedule` stops on SIGINT and SIGTERM: promptly, exit 0, one line, no noise.

A real Prefect server (test_schedule.py's harness, one for the module) and a real
`reasonfactory schedule` process per case. Each waits until the deployment is served (its
runner has polled for runs), sends the signal with `kill`, and gives the process STOP_S seconds.
Before flows/serving.py, SIGTERM printed "coroutine 'Runner.astop' was never awaited", and
SIGINT did nothing to a scheduler started in the background by a shell (`cmd &` leaves
SIGINT ignored; `trap "" INT` below does the same).

Not here: cron runs firing (test_schedule.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from test_schedule import SERVER_START_S, _Procs, _reasonfactory, _start_server

RECIPE = """\
name: stop-test
problems: {source: builtin:arithmetic, limit: 4}
engine: {kind: sim, error_rate: 0.1}
generate: {method: self_output, samples: 1}
"""
SERVED_S = 90  # process start, imports and deployment registration on a loaded machine
STOP_S = 20  # seen: 3-5 s on a 2-core machine under load
NOISE = ("Traceback", "never awaited", "RuntimeWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logs = tmp_path_factory.mktemp("schedule-stop")
    home = logs / "prefect-home"
    home.mkdir()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PREFECT_API_URL", None)
    procs = _Procs(logs, env)
    try:
        procs.env["PREFECT_API_URL"] = _start_server(procs)
        yield procs
    finally:
        procs.stop_all()


def _deployment(api: str, name: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        found = [d for d in client.read_deployments() if d.name == name]
    return found[0] if found else None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "background"),
    [
        (signal.SIGINT, False),
        (signal.SIGINT, True),
        (signal.SIGTERM, True),
    ],
    ids=["SIGINT", "SIGINT-shell-background", "SIGTERM"],
)
def test_schedule_stops_cleanly_on_a_signal(server, tmp_path, sig, background):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    name = f"stop-{sig.name}-{background}"
    args = [_reasonfactory(), "schedule", str(recipe), "--cron", "0 0 1 1 *", "--name", name]
    args += ["--warehouse", str(tmp_path / "wh.duckdb")]
    if background:  # as `cmd &` in a script: SIGINT ignored from the start (exec keeps that)
        args = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *args]
    api = server.env["PREFECT_API_URL"]
    proc = server.start(name, args)
    log = server.started[-1][1]

    deadline = time.monotonic() + SERVED_S
    # Served: the runner has polled for the deployment's runs (Prefect marks it READY then).
    while (found := _deployment(api, name)) is None or found.status.value != "READY":
        assert proc.poll() is None, f"schedule exited {proc.returncode}\n{server.report()}"
        assert time.monotonic() < deadline, f"not served in {SERVED_S} s\n{server.report()}"
        time.sleep(0.5)

    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=SERVER_START_S)
        pytest.fail(f"schedule still running {STOP_S} s after {sig.name}\n{server.report()}")

    text = log.read_text(errors="replace")
    assert code == 0, f"exit {code}\n{text}"
    assert not [n for n in NOISE if n in text], text
    stopped = [line for line in text.splitlines() if line.startswith("stopped by")]
    assert stopped == [
        f"stopped by {sig.name}: deployment 'generate/{name}' is paused, no cron runs until "
        "it is served again"
    ], text
    assert _deployment(api, name).paused
