"""End to end: the real Prefect flow on a temporary DuckDB file."""

from __future__ import annotations

import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators import registry
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse

RECIPE = {
    "name": "e2e",
    "problems": {"source": "builtin:arithmetic", "limit": 40, "difficulty": [2, 4]},
    "engine": {"kind": "sim", "error_rate": 0.2, "format_error_rate": 0.1},
    "generate": {"method": "self_output", "samples": 4, "shard_size": 15},
}


def _counts(path):
    with Warehouse(path, read_only=True) as wh:
        return {t: wh.count(t) for t in ("problems", "traces", "runs", "progress")}


def test_run_stores_filtered_traces_and_a_completed_run(prefect_api, warehouse_path):
    summary = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert summary["generated"] == 160 and summary["engine_calls"] == 3  # 3 shards of <= 15
    with Warehouse(warehouse_path, read_only=True) as wh:
        runs = wh.sql("SELECT status, finished_at FROM runs")
        traces = wh.sql("SELECT status, reject_reason, correct, score FROM traces")
    assert runs["status"].to_list() == ["completed"] and runs["finished_at"][0] is not None
    assert traces.height == 160
    kept = traces.filter(status="kept")
    assert kept["reject_reason"].null_count() == kept.height and kept["correct"].all()
    rejected = traces.filter(status="rejected")
    assert rejected["reject_reason"].null_count() == 0
    assert {"wrong_answer"} <= set(rejected["reject_reason"])
    assert summary["kept"] == kept.height


def test_same_recipe_twice_adds_nothing_another_seed_adds(prefect_api, warehouse_path):
    run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    first = _counts(warehouse_path)
    again = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert _counts(warehouse_path) == first
    assert again["problems_generated"] == 0 and again["engine_calls"] == 0
    seeded = {**RECIPE, "generate": {**RECIPE["generate"], "seed": 1}}
    run_recipe(parse_recipe(seeded), str(warehouse_path))
    after = _counts(warehouse_path)
    assert after["traces"] == 2 * first["traces"]
    assert after["problems"] == first["problems"]  # same problems, new traces


def test_a_run_killed_mid_way_resumes_with_only_the_missing_work(
    prefect_api, warehouse_path, tmp_path, monkeypatch
):
    clean_path = tmp_path / "clean.duckdb"
    run_recipe(parse_recipe(RECIPE), str(clean_path))
    original = registry.GENERATORS["self_output"]
    calls = {"n": 0}

    def dies_on_second_shard(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original.fn(*args, **kwargs)

    monkeypatch.setitem(
        registry.GENERATORS,
        "self_output",
        registry.GeneratorSpec(dies_on_second_shard, original.config),
    )
    with pytest.raises(BaseException):  # noqa: B017  (Prefect may wrap the interrupt)
        run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    # Shards overlap (flows/runners.py), so whether the first one was stored before the
    # second died depends on the machine's load: what must hold is that each stored shard is
    # whole and the resume does exactly the rest.
    partial = _counts(warehouse_path)
    whole_shards = {0, 15, 10, 25}  # none, the first, the last (10 problems), or both
    assert partial["progress"] in whole_shards and partial["traces"] == 4 * partial["progress"]
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.sql("SELECT status FROM runs")["status"].to_list() == ["interrupted"]
    monkeypatch.setitem(registry.GENERATORS, "self_output", original)
    resumed = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert resumed["problems_generated"] == 40 - partial["progress"]
    with Warehouse(warehouse_path, read_only=True) as a, Warehouse(clean_path, read_only=True) as b:
        q = "SELECT trace_id, status, reject_reason, thought FROM traces ORDER BY trace_id"
        assert a.sql(q).equals(b.sql(q))
        assert a.sql("SELECT status FROM runs")["status"].to_list() == ["completed"]


def test_sim_engine_on_a_real_problem_set_fails_cleanly(prefect_api, warehouse_path, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "What is the capital of France?", "answer": "Paris"}\n')
    recipe = parse_recipe({"name": "x", "problems": {"source": str(path)}})
    with pytest.raises(UserError, match="sim engine only solves built-in problems"):
        run_recipe(recipe, str(warehouse_path))
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.sql("SELECT status FROM runs")["status"].to_list() == ["failed"]
        assert wh.count("problems") == 1  # what was loaded stays
