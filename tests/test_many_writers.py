"""Streaming runs and many processes on one warehouse: kill -9 then resume, two runs at once,
export while a run writes. Real `reasonfactory run` processes on a real DuckDB file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse import locking
from reasonfactory.warehouse.errors import WarehouseError
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

RECIPE = {
    "name": "many",
    "problems": {"source": "builtin:arithmetic", "limit": 200, "difficulty": [2, 4]},
    "engine": {"kind": "sim", "error_rate": 0.2},
    "generate": {"method": "self_output", "samples": 4, "shard_size": 10},
    "filters": ["format", "answer"],
    "runner": {"commit_seconds": 0},
}
# Everything a trace is, less when it was made.
TRACES = (
    "SELECT trace_id, problem_id, status, reject_reason, thought, response, predicted, "
    "correct, score FROM traces ORDER BY trace_id"
)


def _start(recipe: dict, path: Path, prefect_api: str, tmp_path: Path) -> subprocess.Popen:
    file = tmp_path / f"{recipe['name']}-{recipe['generate'].get('seed', 0)}.yaml"
    file.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    return subprocess.Popen(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()"]
        + ["run", str(file), "--warehouse", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def _wait_for_progress(path: Path, proc: subprocess.Popen, at_least: int = 1) -> int:
    """Poll the warehouse (a reader: the run hands the file over between shards)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with Warehouse(path, read_only=True, lock_timeout=60) as wh:
                    n = wh.count("progress") if "progress" in _tables(wh) else 0
            except WarehouseError:
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.2)
    raise AssertionError("the run stored nothing in 240 s")


def _tables(wh: Warehouse) -> set[str]:
    return set(wh.sql("SELECT table_name FROM information_schema.tables")["table_name"])


def _clean(recipe: dict, path: Path) -> Path:
    run_recipe(parse_recipe(recipe), str(path))
    return path


@pytest.mark.slow
def test_kill_9_during_a_streaming_run_then_resume_equals_a_clean_run(prefect_api, tmp_path):
    recipe = {**RECIPE, "problems": {**RECIPE["problems"], "limit": 600}}
    path = tmp_path / "killed.duckdb"
    proc = _start(recipe, path, prefect_api, tmp_path)
    done = _wait_for_progress(path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert 0 < done < 600
    with Warehouse(path, read_only=True) as wh:
        assert wh.sql("SELECT status FROM runs")["status"].to_list() == ["running"]
        partial = wh.count("progress")
    resumed = run_recipe(parse_recipe(recipe), str(path))
    assert resumed["problems_generated"] == 600 - partial
    clean = _clean(recipe, tmp_path / "clean.duckdb")
    with Warehouse(path, read_only=True) as a, Warehouse(clean, read_only=True) as b:
        assert a.sql(TRACES).equals(b.sql(TRACES))
        for q in (
            "SELECT problem_id, n_traces FROM progress ORDER BY problem_id",
            "SELECT request_key, text FROM completions ORDER BY request_key",
        ):
            assert a.sql(q).equals(b.sql(q))
        assert a.count("traces") == 2400
        assert a.sql("SELECT status FROM runs")["status"].to_list() == ["completed"]


@pytest.mark.slow
def test_two_runs_at_once_on_one_warehouse_lose_nothing(prefect_api, tmp_path):
    # The first run lasts >= 25 s by construction (a teacher taking 0.25 s a reply, 2 in
    # flight), so the second, started once the first has stored something, runs while it
    # writes: they must take turns and lose nothing.
    problems = write_jsonl(
        tmp_path / "p.jsonl",
        [{"question": f"What is {i} + 1?", "answer": i + 1} for i in range(200)],
    )
    path = tmp_path / "shared.duckdb"
    with TeacherServer(delay_s=0.25) as teacher:
        slow = {
            "name": "many-slow",
            "problems": {"source": str(problems)},
            "engine": {
                "kind": "openai",
                "model": "teacher",
                "base_url": teacher.base_url,
                "concurrency": 2,
            },
            "generate": {"method": "distill", "samples": 1, "max_tokens": 256, "shard_size": 4},
            "filters": ["format", "answer"],
            "runner": {"commit_seconds": 0},
        }
        procs = [_start(slow, path, prefect_api, tmp_path)]
        _wait_for_progress(path, procs[0], at_least=4)
        procs.append(_start(RECIPE, path, prefect_api, tmp_path))
        outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, (out, err)
    with Warehouse(path, read_only=True) as wh:
        both = wh.sql(TRACES)
        runs = wh.sql("SELECT status, started_at, finished_at FROM runs")
        assert sorted(runs["status"]) == ["completed"] * 2
        # They overlapped: each started before the other finished (they took turns).
        assert runs["started_at"].max() < runs["finished_at"].min()
        assert wh.count("problems") == 400 and wh.count("progress") == 400
    assert both.height == 200 + 800 and both["trace_id"].n_unique() == 1000
    with Warehouse(_clean(RECIPE, tmp_path / "clean.duckdb"), read_only=True) as wh:
        alone = wh.sql(TRACES)
    assert both.join(alone, on="trace_id", how="semi").sort("trace_id").equals(alone)


@pytest.mark.slow
def test_export_while_a_run_writes(prefect_api, cli, tmp_path):
    # A teacher that takes 0.25 s a reply, 2 in flight: the run lasts >= 25 s by construction.
    problems = write_jsonl(
        tmp_path / "p.jsonl",
        [{"question": f"What is {i} + 1?", "answer": i + 1} for i in range(200)],
    )
    path = tmp_path / "busy.duckdb"
    with TeacherServer(delay_s=0.25) as teacher:
        recipe = {
            "name": "busy",
            "problems": {"source": str(problems)},
            "engine": {
                "kind": "openai",
                "model": "teacher",
                "base_url": teacher.base_url,
                "concurrency": 2,
            },
            "generate": {"method": "distill", "samples": 1, "max_tokens": 256, "shard_size": 4},
            "filters": ["format", "answer"],
            "runner": {"commit_seconds": 0},
        }
        proc = _start(recipe, path, prefect_api, tmp_path)
        _wait_for_progress(path, proc, at_least=8)
        out = tmp_path / "sft"
        exported = cli(
            "export", "sft", "--out", str(out), "--format", "jsonl", "--warehouse", str(path)
        )
        assert exported.returncode == 0, exported.stderr
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    lines = sum(1 for f in out.rglob("*.jsonl") for _ in f.open())
    with Warehouse(path, read_only=True) as wh:
        assert wh.count("progress") == 200 and wh.count("traces") == 200
        kept = wh.sql("SELECT count(*) AS n FROM traces WHERE status = 'kept'")["n"][0]
        assert wh.sql("SELECT status FROM runs")["status"].to_list() == ["completed"]
    assert 0 < lines < kept  # exported mid-run: part of what the finished run kept


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse file for `seconds` (once it printed 'ok')."""
    Warehouse(path).close()
    code = f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); "
    proc = subprocess.Popen(
        [sys.executable, "-c", code + f"time.sleep({seconds})"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ok"
    return proc


def test_a_held_warehouse_is_waited_for_with_who_holds_it(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = _hold(path, 3)
    lines: list[str] = []
    start = time.monotonic()
    con = locking.connect(path, read_only=True, timeout=60, report=lines.append)
    con.close()
    holder.wait(10)
    assert time.monotonic() - start > 1.5  # it waited for the other process to let go
    assert lines and f"held by PID {holder.pid}" in lines[0] and "waiting" in lines[0]
    assert not list((tmp_path / "held.duckdb.waiting").iterdir())  # its waiter file is gone


def test_a_warehouse_held_too_long_is_a_clear_error(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = _hold(path, 30)
    try:
        with pytest.raises(WarehouseError, match=rf"held by PID {holder.pid}.*gave up after"):
            Warehouse(path, read_only=True, lock_timeout=0.5)
    finally:
        holder.kill()
        holder.wait()
