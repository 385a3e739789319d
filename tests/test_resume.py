"""Content-keyed resume (generators/resume.py) through the real flow: a raised max_tokens
redoes only the truncated samples, a new selection reuses every stored sample."""

from __future__ import annotations

import json

import polars as pl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.cached import CachedEngine, sample_key
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import build_messages
from reasonfactory.warehouse.store import Warehouse

RECIPE = {
    "name": "budget",
    "problems": {"source": "builtin:arithmetic", "limit": 24, "difficulty": [1, 5]},
    "engine": {"kind": "sim", "error_rate": 0.3, "format_error_rate": 0.3},
    "generate": {"method": "self_output", "samples": 4, "shard_size": 10},
}
Q = "SELECT trace_id, thought, response, status, reject_reason, score FROM traces ORDER BY 1"


def _with(**generate) -> dict:
    return {**RECIPE, "generate": {**RECIPE["generate"], **generate}}


def test_a_sample_asked_alone_is_the_same_sample_and_stored_ones_are_reused():
    req = GenRequest(messages=build_messages("Compute 2 + 3 * 4."), n=4, seed=9, max_tokens=8)
    plain = SimEngine().generate([req])[0]
    cached = CachedEngine(SimEngine(), "sim")
    assert [c.text for c in cached.generate([req])[0]] == [c.text for c in plain]
    stored = cached.take_fresh()
    assert stored.height == 4 and stored["request_key"].to_list() == [
        sample_key("sim", req, k) for k in range(4)
    ]
    # Truncated at 8 tokens: a budget of 400 asks again, in one call, for those samples only.
    truncated = [k for k, c in enumerate(plain) if c.finish_reason == "length"]
    assert truncated
    again = CachedEngine(
        SimEngine(), "sim", lambda keys: stored.filter(stored["request_key"].is_in(keys))
    )
    out = again.generate([GenRequest(**{**req.__dict__, "max_tokens": 400})])[0]
    assert again.reused == 4 - len(truncated) and again.take_fresh().height == len(truncated)
    assert all(c.finish_reason == "stop" for c in out)
    full = SimEngine().generate([GenRequest(**{**req.__dict__, "max_tokens": 400})])[0]
    assert [c.text for c in out] == [c.text for c in full]


def _splitting_budget() -> int:
    """A max_tokens that cuts some but not all samples of some problem (the sim is seeded, so
    the flow writes the same samples)."""
    p = RECIPE["problems"]
    problems = load_problems(p["source"], limit=p["limit"], difficulty=tuple(p["difficulty"]))
    traces = self_output(
        problems, SimEngine(0.3, 0.3), SelfOutputConfig(samples=4), RunContext("r", "f", "sim")
    ).traces
    spans = traces.group_by("problem_id").agg(
        lo=pl.col("n_tokens").min(), hi=pl.col("n_tokens").max()
    )
    wide = spans.filter(pl.col("hi") > pl.col("lo")).sort("lo")
    return int(wide["lo"][len(wide) // 2])


def test_raising_max_tokens_redoes_only_truncated_samples_in_place(
    prefect_api, warehouse_path, tmp_path
):
    budget = _splitting_budget()
    first = run_recipe(parse_recipe(_with(max_tokens=budget)), str(warehouse_path))
    truncated = first["rejected"].get("truncated", 0)
    assert 0 < truncated < first["generated"] == 96
    second = run_recipe(parse_recipe(_with(max_tokens=400)), str(warehouse_path))
    assert second["run_id"] == first["run_id"]
    assert second["engine_completions"] == truncated  # only those were generated again
    assert second["samples_reused"] > 0 and "truncated" not in second["rejected"]
    with Warehouse(warehouse_path, read_only=True) as wh:
        resumed = wh.sql(Q)
        assert wh.count("traces") == 96 and wh.count("runs") == 1
    # The same as a run that had the larger budget from the start.
    clean = tmp_path / "clean.duckdb"
    run_recipe(parse_recipe(_with(max_tokens=400)), str(clean))
    with Warehouse(clean, read_only=True) as wh:
        assert resumed.equals(wh.sql(Q))
    third = run_recipe(parse_recipe(_with(max_tokens=400)), str(warehouse_path))
    assert third["engine_calls"] == 0 and third["problems_generated"] == 0


def test_a_new_selection_reuses_every_stored_sample(prefect_api, warehouse_path):
    run_recipe(parse_recipe(_with(max_tokens=400)), str(warehouse_path))
    other = run_recipe(
        parse_recipe(_with(max_tokens=400, selection={"by": "confidence"})), str(warehouse_path)
    )
    assert other["engine_calls"] == 0 and other["samples_reused"] == 96 and other["generated"] == 96
    with Warehouse(warehouse_path, read_only=True) as wh:
        metas = wh.sql(f"SELECT meta FROM traces WHERE run_id = '{other['run_id']}'")["meta"]
    assert {json.loads(m)["selection"]["by"] for m in metas} == {"confidence"}


def test_tokens_are_counted_per_problem_generated_or_served_stored(prefect_api, warehouse_path):
    """The budget a method spends is counted whether the engine generated the samples now or
    the completions table served them, apart, per problem (the `progress` ledger), so a run
    served from the store, or resumed after a kill, counts what it used."""
    first = run_recipe(parse_recipe(_with(max_tokens=400)), str(warehouse_path))
    other = run_recipe(
        parse_recipe(_with(max_tokens=400, selection={"by": "confidence"})), str(warehouse_path)
    )
    assert first["engine_tokens"] > 0 and first["tokens_reused"] == 0
    assert other["engine_tokens"] == 0 and other["tokens_reused"] == first["engine_tokens"]
    with Warehouse(warehouse_path, read_only=True) as wh:
        spent = wh.sql(
            "SELECT run_id, sum(tokens_generated) AS g, sum(tokens_reused) AS r, count(*) AS n "
            "FROM progress GROUP BY 1"
        )
        traces = wh.sql("SELECT run_id, sum(n_tokens) AS t FROM traces GROUP BY 1")
    by_run = {r["run_id"]: r for r in spent.iter_rows(named=True)}
    assert (
        by_run[first["run_id"]]["g"] == first["engine_tokens"] and by_run[first["run_id"]]["r"] == 0
    )
    assert (
        by_run[other["run_id"]]["r"] == first["engine_tokens"] and by_run[other["run_id"]]["g"] == 0
    )
    # self_output's traces are its samples: the same tokens, counted from the other side.
    assert dict(traces.rows())[first["run_id"]] == first["engine_tokens"]
