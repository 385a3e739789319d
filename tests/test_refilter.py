"""refilter: re-apply filters to stored traces without generating; stats follow."""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.filters.pipeline import parse_filter_spec
from reasonfactory.filters.working import rebuild_working_columns
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import filters_from_file, run_refilter
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse

RECIPE = {
    "name": "refilter",
    "problems": {"source": "builtin:arithmetic", "limit": 30, "difficulty": [2, 4]},
    "engine": {"kind": "sim", "error_rate": 0.2, "format_error_rate": 0.1},
    "generate": {"method": "self_output", "samples": 4},
    "filters": ["format", "answer"],
}
STRICT = ["format", "answer", {"length": {"shortest_k": 1}}, "dedup"]
COLUMNS = "trace_id, status, reject_reason, correct, lang, meta, thought, created_at"


def _traces(path) -> pl.DataFrame:
    with Warehouse(path, read_only=True) as wh:
        return wh.sql(f"SELECT {COLUMNS} FROM traces ORDER BY trace_id")


def _specs(items):
    return [parse_filter_spec(i) for i in items]


def test_refilter_rewrites_verdicts_keeps_every_trace_and_round_trips(prefect_api, warehouse_path):
    summary = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    before = _traces(warehouse_path)
    strict = run_refilter(summary["run_id"], str(warehouse_path), _specs(STRICT))
    after = _traces(warehouse_path)
    assert strict["traces"] == before.height == after.height == 120
    assert after["trace_id"].equals(before["trace_id"]) and after["thought"].equals(
        before["thought"]
    )
    assert after["created_at"].equals(before["created_at"])
    assert strict["kept"] < summary["kept"]
    assert {"duplicate", "overthinking"} & set(strict["rejected"])
    verdicts = [json.loads(m)["verdicts"] for m in after["meta"]]
    assert all(list(v) == ["format", "answer", "length", "dedup"] for v in verdicts)
    # idempotent: the same filters again change nothing
    run_refilter(summary["run_id"], str(warehouse_path), _specs(STRICT))
    assert _traces(warehouse_path).equals(after)
    # back to the run's own filters: exactly what generation stored
    run_refilter(summary["run_id"], str(warehouse_path), _specs(RECIPE["filters"]))
    again = _traces(warehouse_path)
    assert again.drop("meta").equals(before.drop("meta"))
    strip = [{k: v for k, v in json.loads(m).items() if k != "details"} for m in before["meta"]]
    assert [json.loads(m) for m in again["meta"]] == strip


def test_stats_funnel_follows_the_filters_last_applied(prefect_api, warehouse_path):
    summary = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    run_refilter(summary["run_id"], str(warehouse_path), _specs(STRICT))
    with Warehouse(warehouse_path, read_only=True) as wh:
        (stats,) = run_stats(wh)
        recipe = wh.sql("SELECT recipe, meta FROM runs")
    assert [name for name, _ in stats.funnel] == ["format", "answer", "length", "dedup"]
    counts = [n for _, n in stats.funnel]
    assert counts == sorted(counts, reverse=True) and counts[-1] == stats.kept
    assert stats.generated - stats.kept == sum(stats.rejected.values())
    assert "dedup" in recipe["recipe"][0]
    assert json.loads(recipe["meta"][0])["refilter"]["kept"] == stats.kept


def test_filters_from_a_filters_only_file_and_errors(tmp_path, prefect_api, warehouse_path):
    f = tmp_path / "f.yaml"
    f.write_text("filters: [format, {length: {max_tokens: 100}}]\n")
    assert [s.name for s in filters_from_file(str(f))] == ["format", "length"]
    f.write_text("filters: [format, {length: {maxi: 100}}]\n")
    with pytest.raises(UserError, match="unknown option 'maxi'"):
        filters_from_file(str(f))
    with pytest.raises(UserError, match="no warehouse at"):
        run_refilter("r_nope", str(warehouse_path), _specs(["format"]))
    Warehouse(warehouse_path).close()
    with pytest.raises(UserError, match="no run 'r_nope'"):
        run_refilter("r_nope", str(warehouse_path), _specs(["format"]))


def test_rebuild_uses_the_recorded_majority_when_the_problem_has_no_gold():
    traces = pl.DataFrame(
        {
            "problem_id": ["p", "q"],
            "response": ["\\boxed{7}", ""],
            "meta": [
                '{"gold_source": "majority", "majority_answer": "7", "finish_reason": "stop"}',
                '{"gold_source": "none", "finish_reason": "length", "think_closed": false}',
            ],
        }
    )
    problems = pl.DataFrame(
        {"problem_id": ["p", "q"], "question": ["a", "b"], "gold": [None, None]},
        schema_overrides={"gold": pl.String},
    )
    out = rebuild_working_columns(traces, problems)
    assert out.select("gold", "gold_source", "finish_reason", "think_closed").rows() == [
        ("7", "majority", "stop", True),
        (None, "none", "length", False),
    ]


@pytest.mark.slow
def test_cli_refilter_and_help(cli, tmp_path):
    cli("demo", "--limit", "20", check=True)
    run_id = json.loads(
        cli("query", "SELECT run_id FROM runs", "--format", "json", check=True).stdout
    )[0]["run_id"]
    f = tmp_path / "strict.yaml"
    f.write_text("filters: [format, answer, dedup]\n")
    proc = cli("refilter", "--run", run_id, "--recipe", str(f), check=True)
    assert "filters: format, answer, dedup" in proc.stdout and "rejected duplicate:" in proc.stdout
    stats = cli("stats", check=True).stdout
    assert "-> dedup" in stats and "re-filtered" in stats
    bad = cli("refilter", "--run", "r_missing")
    assert bad.returncode == 1 and "no run 'r_missing'" in bad.stderr
    assert "Traceback" not in bad.stderr
    for cmd in ("refilter", "decontam"):
        help_text = cli(cmd, "--help", check=True).stdout
        assert "Usage" in help_text and "Example" in help_text


def test_refilter_rebuilds_countdown_checkers_and_generator_verdicts(prefect_api, warehouse_path):
    # sos traces are checked by a Countdown checker and may be rejected by the generator
    # itself (no_solution): a refilter must rebuild both from the warehouse.
    recipe = {
        "name": "refilter-sos",
        "problems": {"source": "builtin:countdown", "limit": 12},
        "generate": {"method": "sos", "samples": 3, "max_nodes": 40},
        "filters": ["format", "answer"],
    }
    summary = run_recipe(parse_recipe(recipe), str(warehouse_path))
    before = _traces(warehouse_path)
    assert {"no_solution"} <= set(before["reject_reason"].drop_nulls())
    assert before["correct"].drop_nulls().any()
    run_refilter(summary["run_id"], str(warehouse_path), _specs(["format", "answer", "dedup"]))
    run_refilter(summary["run_id"], str(warehouse_path), _specs(recipe["filters"]))
    after = _traces(warehouse_path)
    assert after.drop("meta").equals(before.drop("meta"))
    assert [json.loads(m)["verdicts"] for m in after["meta"]] == [
        json.loads(m)["verdicts"] for m in before["meta"]
    ]
