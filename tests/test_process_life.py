"""The CLI's process life on the local Prefect server it starts (no PREFECT_API_URL): Ctrl-C
is one line saying what is stored, within seconds; the server is reused by the next command
and stops by itself when unused, also after a `kill -9` of the command that started it; a
killed run reads as `crashed`; a user's own PREFECT_API_URL starts nothing. Real
subprocesses, signals, servers and DuckDB files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_until
from reasonfactory.flows.local_server import read_state, stop_server
from reasonfactory.warehouse.liveness import effective_status, owner_alive, process_owner
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

RECIPE = """name: slow
problems: {source: builtin:arithmetic, limit: 3000}
generate: {samples: 8, shard_size: 50}
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, list[str]]:
    """`reasonfactory run` until its second shard is stored; returns it and what it said."""
    (tmp_path / "r.yaml").write_text(RECIPE)
    return _cli_until(tmp_path, "shard 2/", PREFECT_LOGGING_LEVEL="INFO")


def _cli_until(tmp_path: Path, marker: str, **env_vars) -> tuple[subprocess.Popen, list[str]]:
    return cli_until(tmp_path, marker, **env_vars)


@pytest.fixture(autouse=True)
def _no_server_left(tmp_path):
    """A local server a test's commands started (PREFECT_HOME is the test's own) is stopped
    after it, whatever the test asserted."""
    yield
    stop_server(tmp_path / "prefect")


def _server(tmp_path: Path) -> dict | None:
    return read_state(tmp_path / "prefect")


@pytest.mark.slow
def test_ctrl_c_is_one_line_within_seconds_and_the_server_stays_for_the_next(tmp_path):
    proc, _ = _start(tmp_path)
    server = _server(tmp_path)
    assert server is not None, "the command started the local Prefect server"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:  # a CLI that never exits fails here in 30 s instead of hanging the suite
        rest, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("Ctrl-C: the CLI was still running 30 s later") from None
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 130
    last = rest.strip().splitlines()[-1]
    assert last.startswith("interrupted: run r_") and "run the same command again" in last
    assert "Traceback" not in rest and "leaked" not in rest
    # The server runs in its own session: Ctrl-C reached only the command.
    assert _server(tmp_path) == server
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        done = wh.count("progress")
        status = wh.sql("SELECT status FROM runs")["status"].to_list()
    assert done >= 100 and f"has {done} problems" in last
    assert status == ["interrupted"]


@pytest.mark.slow
def test_kill_9_leaves_the_server_only_until_its_idle_time_and_the_run_reads_crashed(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    proc, _ = _cli_until(
        tmp_path, "shard 2/", PREFECT_LOGGING_LEVEL="INFO", REASONFACTORY_SERVER_IDLE="6"
    )
    server = _server(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    assert server is not None and _server(tmp_path) == server  # nobody's, for now
    deadline = time.monotonic() + 30  # idle 6 s, checked every 1.5 s, then uvicorn stops
    while _server(tmp_path) is not None:
        assert time.monotonic() < deadline, "the unused server outlived its idle time"
        time.sleep(0.5)
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        [row] = run_stats(wh)
        stored = wh.sql("SELECT status FROM runs")["status"][0]
    assert stored == "running" and row.status == "crashed"


@pytest.mark.slow
def test_a_second_command_reuses_the_server_and_it_stops_when_unused(tmp_path):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    env["REASONFACTORY_SERVER_IDLE"] = "15"
    demo = [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "demo"]
    walls, servers = [], []
    for n in (1, 2):
        t0 = time.monotonic()
        proc = subprocess.run(
            [*demo, "--limit", "5", "-w", str(tmp_path / f"{n}.duckdb")],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        walls.append(time.monotonic() - t0)
        assert proc.returncode == 0, proc.stderr
        servers.append(_server(tmp_path))
    assert servers[0] is not None and servers[1] == servers[0]  # the same process, reused
    status = subprocess.run(
        [*demo[:3], "server", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert f"local server {servers[0]['url']} (pid {servers[0]['pid']}" in status.stdout
    deadline = time.monotonic() + 60
    while _server(tmp_path) is not None:
        assert time.monotonic() < deadline, "the unused server outlived its idle time"
        time.sleep(0.5)


def test_a_server_whose_folder_was_removed_stops_after_its_idle_time(tmp_path):
    """A temporary PREFECT_HOME (a bench's, a test's) removed while its server runs: no
    command can find that server again, so its watchdog stops it after the idle time (the
    watchdog itself died on the missing lock file, and the server ran until killed)."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    env["REASONFACTORY_SERVER_IDLE"] = "3"
    demo = [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "demo"]
    proc = subprocess.run(
        [*demo, "--limit", "3", "-w", str(tmp_path / "wh.duckdb")],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    server = _server(tmp_path)
    assert server is not None and owner_alive(server["owner"])
    shutil.rmtree(tmp_path / "prefect")
    deadline = time.monotonic() + 45
    while owner_alive(server["owner"]):
        if time.monotonic() > deadline:
            os.kill(server["pid"], signal.SIGKILL)
            raise AssertionError("the server outlived its removed folder")
        time.sleep(0.5)


def test_a_users_prefect_api_url_is_used_and_nothing_is_started(prefect_api, cli, tmp_path):
    proc = cli("demo", "--limit", "5", "-w", str(tmp_path / "wh.duckdb"), check=True,
               env={"PREFECT_HOME": str(tmp_path / "prefect")})  # fmt: skip
    assert "stored in" in proc.stdout
    assert not (tmp_path / "prefect" / "reasonfactory-server.json").exists()
    assert _server(tmp_path) is None


def test_the_owner_of_a_run_is_checked_by_pid_and_start_time():
    assert owner_alive(process_owner()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = process_owner(child.pid)
    child.wait()
    assert owner_alive(owner) is False and effective_status("running", owner) == "crashed"
    assert effective_status("completed", owner) == "completed"
    host, pid, start = process_owner().split(":")
    assert owner_alive(f"{host}:{pid}:{int(start) + 1}") is False  # a recycled pid
    assert owner_alive(f"other-host:{pid}:{start}") is None  # cannot tell from here


def test_ctrl_c_does_not_wait_out_slow_teacher_replies(tmp_path):
    """An `openai` run whose replies take a minute stops in seconds: the requests in flight
    are cancelled, not awaited, and the cancelled shards print nothing but the one line."""
    questions = [
        {"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(24)
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    with TeacherServer(delay_s=120.0) as srv:
        (tmp_path / "r.yaml").write_text(
            "name: slow-teacher\nproblems: {source: p.jsonl}\n"
            f"engine: {{kind: openai, model: teacher, base_url: '{srv.base_url}', "
            "api_key_env: RF_TEST_KEY, timeout: 300, concurrency: 8}\n"
            "generate: {method: distill, samples: 1, shard_size: 4}\n"
        )
        proc, _ = _cli_until(tmp_path, "still to generate", RF_TEST_KEY="k")
        time.sleep(3)  # the first shards' requests are now waiting on the server
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("Ctrl-C waited for the teacher's replies") from None
    assert time.monotonic() - t0 < 20  # the replies would take 120 s
    assert proc.returncode == 130
    assert rest.strip().splitlines()[-1].startswith("interrupted: run r_")
    assert "CancelledError" not in rest and "Traceback" not in rest, rest


def test_a_finished_openai_run_exits_without_shutdown_noise(cli, tmp_path):
    """The engine's event-loop thread is stopped at exit: a daemon thread frozen mid-loop
    kept DuckDB objects alive, and the interpreter printed ~40 `nanobind: leaked` lines."""
    (tmp_path / "p.jsonl").write_text('{"question": "What is 3 + 4?", "answer": "7"}\n')
    with TeacherServer() as srv:
        (tmp_path / "r.yaml").write_text(
            "name: quiet\nproblems: {source: p.jsonl}\n"
            f"engine: {{kind: openai, model: teacher, base_url: '{srv.base_url}'}}\n"
            "generate: {method: distill, samples: 1}\n"
        )
        proc = cli("run", "r.yaml", "-w", str(tmp_path / "wh.duckdb"), check=True)
    assert "kept 1" in proc.stdout
    assert "nanobind" not in proc.stderr + proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_a_killed_runs_prefect_flow_run_is_marked_crashed_by_the_next_run(prefect_api, tmp_path):
    """Prefect never hears of a `kill -9`: its flow run would read `Running` forever. The next
    run on the warehouse marks it `Crashed`, and `stats` reads the run as crashed too."""
    from prefect.client.orchestration import get_client
    from reasonfactory.flows.run_record import crashed_flow_runs

    (tmp_path / "r.yaml").write_text(RECIPE)
    proc, _ = cli_until(tmp_path, "shard 2/", api=prefect_api, PREFECT_LOGGING_LEVEL="INFO")
    proc.kill()
    proc.wait(timeout=10)
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        flow_run = wh.sql("SELECT flow_run FROM runs")["flow_run"][0]
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run).state.is_running()
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        assert crashed_flow_runs(wh) == [flow_run]  # what every run does as it starts
        assert crashed_flow_runs(wh) == []  # once
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run).state
    assert state.is_crashed() and "kill -9" in state.message
