"""`reasonfactory deploy` end to end: a real Prefect server, a process work pool, a real
worker (`prefect worker start --pool`), and a folder of problem files that grows between two
runs of the deployment: the second run does only the new problems, in the same run.

Server and worker are subprocesses (own PREFECT_HOME, own process groups; test_schedule.py's
harness). Not here: cron firing (test_schedule.py), the flow itself (test_flow_generate.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from reasonfactory.generators.problems.sources import load_problems
from test_schedule import _open_read_only, _reasonfactory, _start_server, procs  # noqa: F401

POOL = "rf-test-pool"
RECIPE = """\
name: deploy-test
problems: {source: "incoming/*.jsonl"}
engine: {kind: sim, error_rate: 0.1}
generate: {method: self_output, samples: 2}
"""
RUN_S = 240


def _drop(path, problems) -> None:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in problems))


def _run_deployment(api: str):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        return run_deployment("generate/deploy-test", timeout=RUN_S)


def _runs(warehouse):
    con = _open_read_only(warehouse)
    try:
        runs = con.execute("SELECT run_id, status, meta FROM runs").fetchall()
        traces = con.execute("SELECT count(*), count(DISTINCT problem_id) FROM traces").fetchone()
        return [(r, s, json.loads(m)) for r, s, m in runs], traces
    finally:
        con.close()


@pytest.mark.slow
def test_a_worker_runs_the_deployment_and_a_new_file_adds_only_its_problems(procs, tmp_path):  # noqa: F811
    built = load_problems("builtin:arithmetic", limit=5, seed=3)
    problems = list(zip(built["question"], built["gold"], strict=True))
    (tmp_path / "incoming").mkdir()
    _drop(tmp_path / "incoming" / "a.jsonl", problems[:3])
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    warehouse = tmp_path / "wh.duckdb"

    api = _start_server(procs)
    procs.env["PREFECT_API_URL"] = api
    procs.env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    made = subprocess.run(
        [_reasonfactory(), "deploy", "recipe.yaml", "--pool", POOL, "-w", str(warehouse)],
        cwd=tmp_path,
        env=procs.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "deployment generate/deploy-test" in made.stdout
    worker = procs.start(
        "worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
    )

    first = _run_deployment(api)
    assert first.state.is_completed(), f"{first.state}\n{procs.report()}"
    runs, traces = _runs(warehouse)
    assert [(s, m["problems_generated"]) for _, s, m in runs] == [("completed", 3)]
    assert traces == (3 * 2, 3)

    # A new file: two new problems and one already done (same question and gold).
    _drop(tmp_path / "incoming" / "b.jsonl", [problems[0], *problems[3:]])
    second = _run_deployment(api)
    assert second.state.is_completed(), f"{second.state}\n{procs.report()}"
    assert worker.poll() is None, procs.report()
    again, traces = _runs(warehouse)
    assert [r for r, _, _ in again] == [r for r, _, _ in runs]  # the same run, grown
    assert [(s, m["problems"], m["problems_generated"]) for _, s, m in again] == [
        ("completed", 5, 2)
    ]
    assert traces == (5 * 2, 5)
