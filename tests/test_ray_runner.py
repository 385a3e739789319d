"""The Ray runner end to end: two local Ray workers (loopback, `ray.init(num_cpus=2)`) with
the sim engine store, row for row, what the single-process run stores."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import RecipeError, parse_recipe
from reasonfactory.generators import registry
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse

ENGINE = {"kind": "sim", "error_rate": 0.3, "format_error_rate": 0.1, "typo_rate": 0.1}
PROBLEMS = {"source": "builtin:arithmetic", "limit": 30, "difficulty": [3, 5]}
RECIPES = {
    "self_output": {
        "name": "ray-self",
        "problems": PROBLEMS,
        "engine": ENGINE,
        "generate": {"method": "self_output", "samples": 4, "shard_size": 7},
        "filters": ["format", "answer", {"length": {"max_tokens": 200}}, "dedup"],
    },
    "tree": {  # stores nodes too
        "name": "ray-tree",
        "problems": {**PROBLEMS, "limit": 12},
        "engine": ENGINE,
        "generate": {"method": "tree", "rollouts": 4, "width": 3, "shard_size": 5},
    },
}
# Every column, less the wall-clock ones.
TABLES = {
    "traces": ("trace_id", "created_at"),
    "nodes": ("tree_id, node_id", None),
    "progress": ("problem_id", "finished_at"),
    "completions": ("request_key", "created_at"),
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _fails(*args, **kwargs):
    raise AssertionError("generated in the flow's process, not in a Ray worker")


def _rows(path) -> dict:
    with Warehouse(path, read_only=True) as wh:
        out = {}
        for table, (order, clock) in TABLES.items():
            columns = [c for c in wh.sql(f"SELECT * FROM {table} LIMIT 0").columns if c != clock]
            out[table] = wh.sql(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
        out["runs"] = wh.sql("SELECT run_id, status, fingerprint FROM runs")
        return out


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(RECIPES))
def test_two_ray_workers_store_what_one_process_stores(
    method, local_ray, prefect_api, tmp_path, monkeypatch
):
    recipe = RECIPES[method]
    local = run_recipe(parse_recipe(recipe), str(tmp_path / "local.duckdb"))
    distributed = {**recipe, "runner": {"kind": "ray", "replicas": 2, "commit_seconds": 0}}
    # Proof the work happens in the Ray workers: in this process the method now fails.
    spec = registry.GENERATORS[method]
    monkeypatch.setitem(registry.GENERATORS, method, registry.GeneratorSpec(_fails, spec.config))
    spread = run_recipe(parse_recipe(distributed), str(tmp_path / "ray.duckdb"))
    a, b = _rows(tmp_path / "local.duckdb"), _rows(tmp_path / "ray.duckdb")
    assert a["traces"].height == local["generated"] > 0
    if method == "tree":
        assert a["nodes"].height > 0
    for table in a:
        assert a[table].equals(b[table]), table
    assert spread["run_id"] == local["run_id"]  # the runner is no part of a run's identity
    for key in (
        "generated",
        "kept",
        "rejected",
        "engine_calls",
        "engine_requests",
        "engine_tokens",
    ):
        assert spread[key] == local[key], key
    # Run again on Ray: everything is done, nothing is added, no Ray work is started.
    again = run_recipe(parse_recipe(distributed), str(tmp_path / "ray.duckdb"))
    assert again["problems_generated"] == 0 and again["engine_calls"] == 0
    assert _rows(tmp_path / "ray.duckdb")["traces"].equals(b["traces"])


def test_ray_settings_need_kind_ray_and_a_known_address():
    base = RECIPES["self_output"]
    with pytest.raises(RecipeError, match="need runner kind: ray"):
        parse_recipe({**base, "runner": {"replicas": 2}})
    with pytest.raises(RecipeError, match=r"runner.address: .*local\|auto\|ray://.*got 'tcp://x'"):
        parse_recipe({**base, "runner": {"kind": "ray", "address": "tcp://x"}})
    ok = parse_recipe({**base, "runner": {"kind": "ray", "address": "ray://head:10001"}})
    assert ok.fingerprint == parse_recipe(base).fingerprint


def test_more_gpus_than_the_local_ray_has_is_a_clear_error(local_ray, prefect_api, tmp_path):
    greedy = {**RECIPES["self_output"], "runner": {"kind": "ray", "gpus_per_replica": 1}}
    # Checked before a run is recorded or a Ray starts (flows/preflight.py); the runner's own
    # check ("1 replicas need 1 GPUs, this Ray has 0") stays for a Ray joined elsewhere.
    with pytest.raises(UserError, match="gpus_per_replica 1, but this machine has no GPU"):
        run_recipe(parse_recipe(greedy), str(tmp_path / "wh.duckdb"))
    if (tmp_path / "wh.duckdb").exists():
        with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
            assert wh.count("runs") == 0 and wh.count("traces") == 0


def test_sim_delay_changes_no_identity():
    base = RECIPES["self_output"]
    slow = parse_recipe({**base, "engine": {**ENGINE, "delay_s": 0.5}})
    assert slow.engine_id == parse_recipe(base).engine_id
    assert slow.run_id == parse_recipe(base).run_id


def _replica_pids() -> list[int]:
    """Ray worker processes running a `Replica` actor (their title is `ray::Replica...`)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::Replica"):
                pids.append(int(entry))
    return pids


@pytest.mark.slow
def test_a_dead_replicas_shards_go_to_another_and_nothing_is_lost(local_ray, prefect_api, tmp_path):
    """One replica's process is killed mid-run: its shards are done by the other replica,
    the run completes with one warning line, and stores what a clean run stores."""
    recipe = {**RECIPES["self_output"], "engine": {**ENGINE, "delay_s": 0.4}}
    recipe["generate"] = {**recipe["generate"], "shard_size": 2}
    local = run_recipe(parse_recipe(recipe), str(tmp_path / "local.duckdb"))
    distributed = {**recipe, "runner": {"kind": "ray", "replicas": 2, "commit_seconds": 0}}
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(
            summary=run_recipe(parse_recipe(distributed), str(tmp_path / "ray.duckdb"))
        )
    )
    thread.start()
    deadline = time.monotonic() + 120
    while len(_replica_pids()) < 2:
        assert time.monotonic() < deadline, "the replicas did not start"
        time.sleep(0.2)
    time.sleep(2)  # a few shards in
    os.kill(_replica_pids()[0], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the run did not finish after a replica died"
    summary = result["summary"]
    assert summary["replicas_lost"] == 1 and summary["generated"] == local["generated"]
    a, b = _rows(tmp_path / "local.duckdb"), _rows(tmp_path / "ray.duckdb")
    for table in ("traces", "progress"):
        assert a[table].equals(b[table]), table
