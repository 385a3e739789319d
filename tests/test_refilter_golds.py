"""Every method records the gold it judged its traces by, so `refilter` with the same filters
changes nothing, also for problems without a gold (majority, tree answers, confidence or
best-of-n picks)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import write_jsonl
from reasonfactory.filters.pipeline import parse_filter_spec
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import run_refilter
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

FILTERS = ["format", "answer"]


def _no_gold(tmp_path, source="builtin:arithmetic", n=12):
    questions = load_problems(source, limit=n, difficulty=(2, 4))["question"].to_list()
    return str(write_jsonl(tmp_path / "no_gold.jsonl", [{"question": q} for q in questions]))


def _traces(path) -> pl.DataFrame:
    with Warehouse(path, read_only=True) as wh:
        return wh.sql("SELECT * FROM traces ORDER BY trace_id")


def _refilter_changes_nothing(recipe: dict, path) -> pl.DataFrame:
    summary = run_recipe(parse_recipe(recipe), str(path))
    before = _traces(path)
    assert (before["status"] == "kept").any(), "nothing kept: the test would prove nothing"
    run_refilter(summary["run_id"], str(path), [parse_filter_spec(f) for f in FILTERS])
    after = _traces(path)
    assert after.drop("meta").equals(before.drop("meta"))
    assert [json.loads(m) for m in after["meta"]] == [json.loads(m) for m in before["meta"]]
    return before


def _gold_sources(traces: pl.DataFrame) -> set[str]:
    return {json.loads(m)["gold_source"] for m in traces["meta"]}


@pytest.mark.parametrize(
    "generate, found",
    [
        ({"method": "self_output", "samples": 4}, "majority"),
        ({"method": "self_output", "samples": 4, "selection": {"by": "confidence"}}, "confidence"),
        (
            {"method": "self_output", "samples": 4, "selection": {"by": "best_of_n"}},
            "best_of_n",
        ),
        ({"method": "tree", "rollouts": 6, "width": 2, "traces_per_problem": 2}, "majority"),
        ({"method": "journey", "samples": 4, "detours": 1}, "majority"),
    ],
    ids=["self_output", "confidence", "best_of_n", "tree", "journey"],
)
def test_refilter_keeps_the_gold_each_method_found(generate, found, prefect_api, tmp_path):
    recipe = {
        "name": f"golds-{generate['method']}",
        "problems": {"source": _no_gold(tmp_path)},
        "engine": {"kind": "sim", "error_rate": 0.2},
        "generate": generate,
        "filters": FILTERS,
    }
    before = _refilter_changes_nothing(recipe, tmp_path / "wh.duckdb")
    assert found in _gold_sources(before.filter(status="kept"))


def test_refilter_keeps_the_gold_of_a_distill_teacher_pick(prefect_api, tmp_path):
    problems = [{"question": f"What is {a} + {a + 3}?"} for a in range(6)]
    with TeacherServer() as srv:
        recipe = {
            "name": "golds-distill",
            "problems": {"source": str(write_jsonl(tmp_path / "q.jsonl", problems))},
            "engine": {"kind": "openai", "model": "teacher", "base_url": srv.base_url},
            "generate": {"method": "distill", "samples": 2, "selection": {"by": "confidence"}},
            "filters": FILTERS,
        }
        before = _refilter_changes_nothing(recipe, tmp_path / "wh.duckdb")
    assert _gold_sources(before) == {"confidence"}


def test_refilter_keeps_sos_golds(prefect_api, tmp_path):
    recipe = {
        "name": "golds-sos",
        "problems": {"source": "builtin:countdown", "limit": 8},
        "generate": {"method": "sos", "samples": 2, "max_nodes": 60},
        "filters": FILTERS,
    }
    before = _refilter_changes_nothing(recipe, tmp_path / "wh.duckdb")
    assert _gold_sources(before) == {"problem"}
