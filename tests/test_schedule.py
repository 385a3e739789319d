"""`reasonfactory schedule` end to end: a real Prefect server, a cron deployment, a run that fires.

Starts `prefect server start` and `reasonfactory schedule --cron "* * * * *"` as two
subprocesses (own PREFECT_HOME, own process groups), then waits for the deployment's first
scheduled run to complete and reads its traces from the warehouse. The cron fires at the next
minute boundary, so the test takes about 30-90 s.

Not here: the flow's own behaviour (test_flow_generate.py); ephemeral mode, where Prefect 3.8.8
serves the deployment but never schedules runs ("Cannot schedule flows on an ephemeral server").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

RECIPE = """\
name: sched-test
problems: {source: builtin:arithmetic, limit: 10}
engine: {kind: sim, error_rate: 0.1}
generate: {method: self_output, samples: 2}
"""
CRON = "* * * * *"
SERVER_START_S = 60
RUN_COMPLETED_S = 150
FINAL_FAILURES = {"FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- {path.name} (last {chars} chars) ---\n{text[-chars:]}"


class _Procs:
    """Subprocesses started in their own process groups, each logging to a file in `logs`."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env = logs, env
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                args,
                cwd=self.logs,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc

    def report(self) -> str:
        return "\n".join(_tail(log) for _, log in self.started)

    def stop_all(self) -> None:
        # Newest first: the serve process before the server it talks to.
        for proc, _ in reversed(self.started):
            for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue


@pytest.fixture
def procs(tmp_path) -> Iterator[_Procs]:
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # The server schedules a new deployment's runs on its next visit (every 5 s by
        # default); a deployment made just before a minute boundary would wait a whole minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PREFECT_API_URL", None)
    running = _Procs(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def _start_server(procs: _Procs) -> str:
    port = _free_port()
    server = procs.start(
        "server",
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited {server.returncode}\n{procs.report()}"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return api
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {SERVER_START_S} s\n{procs.report()}")


def _reasonfactory() -> str:
    script = Path(sys.executable).parent / "reasonfactory"
    assert script.exists(), f"console script {script} missing: `pip install -e .` the project"
    return str(script)


def _open_read_only(path: Path, timeout_s: float = 20) -> duckdb.DuckDBPyConnection:
    # One writer per file: the serve process may still hold the lock for a moment.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_schedule_fires_a_run_that_fills_the_warehouse(procs, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowFilter,
        FlowFilterName,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    warehouse = tmp_path / "wh.duckdb"

    api = _start_server(procs)
    procs.env["PREFECT_API_URL"] = api
    serve = procs.start(
        "schedule",
        [_reasonfactory(), "schedule", str(recipe), "--cron", CRON, "--warehouse", str(warehouse)],
    )

    deadline = time.monotonic() + RUN_COMPLETED_S
    deployment = completed = None
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while completed is None:
            assert time.monotonic() < deadline, (
                f"no completed run within {RUN_COMPLETED_S} s (deployment found: "
                f"{deployment is not None})\n"
                f"{procs.report()}"
            )
            assert serve.poll() is None, f"schedule exited {serve.returncode}\n{procs.report()}"
            time.sleep(1)
            if deployment is None:
                found = client.read_deployments(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["generate"]))
                )
                deployment = found[0] if found else None
                continue
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            states = {r.id: r.state_type.value if r.state_type else None for r in runs}
            assert not FINAL_FAILURES & set(states.values()), f"{states}\n{procs.report()}"
            completed = next((r for r in runs if states[r.id] == "COMPLETED"), None)

    assert deployment.name == "sched-test"
    assert [s.schedule.cron for s in deployment.schedules] == [CRON]
    assert completed.parameters["warehouse"] == str(warehouse.resolve())

    con = _open_read_only(warehouse)
    try:
        runs = con.sql("SELECT run_id, status FROM runs").fetchall()
        assert [status for _, status in runs] == ["completed"], runs
        traces = con.execute("SELECT count(*) FROM traces WHERE run_id = ?", [runs[0][0]])
        assert traces.fetchall() == [(10 * 2,)]
    finally:
        con.close()
