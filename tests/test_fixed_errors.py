"""Errors detected and fixed: `fixed_errors` (what the loop counts in a model's traces) and
the `steps` filter's `allow_fixed` (how the loop keeps journey traces), on real journey
traces made by the `journey` method from sim-engine samples of problems with no answers."""

from __future__ import annotations

import json

import polars as pl
from reasonfactory.filters.steps import steps_filter
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.loop_stages import self_correction
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.generators.verify.steps import fixed_errors
from reasonfactory.warehouse.store import Warehouse


def test_fixed_errors_counts_false_steps_and_later_corrections():
    assert fixed_errors("") == (0, 0)
    assert fixed_errors("Step 1: 4 * 6 = 24.\n\nStep 2: 24 - 5 = 19.") == (0, 0)
    # wrong, then right with the same left side (spaces aside): fixed
    assert fixed_errors("Step 1: 4 * 6 = 26.\n\nNo.\n\nStep 1: 4*6 = 24.") == (1, 1)
    # the correction must come after the error, and be about the same claim
    assert fixed_errors("Step 1: 4 * 6 = 24.\n\nStep 1: 4 * 6 = 26.") == (1, 0)
    assert fixed_errors("Step 1: 4 * 6 = 26.\n\nStep 2: 4 * 7 = 28.") == (1, 0)
    # two errors, one fixed
    two = "Step 1: 4 * 6 = 26.\n\nStep 1: 4 * 6 = 24.\n\nStep 2: 24 - 5 = 18."
    assert fixed_errors(two) == (2, 1)


def test_steps_filter_allow_fixed_keeps_only_traces_whose_every_error_is_fixed():
    thoughts = [
        "Step 1: 5 + 33 = 28.\n\nWait: 5 + 33 is 38, not 28.\n\nStep 1: 5 + 33 = 38.",
        "Step 1: 5 + 33 = 28.\n\nStep 2: 28 * 2 = 56.",
        "Step 1: 5 + 33 = 28.\n\nStep 1: 5 + 33 = 38.\n\nStep 2: 38 * 2 = 75.",
        "Step 1: 5 + 33 = 38.",
    ]
    frame = pl.DataFrame({"thought": thoughts})
    strict = steps_filter(frame)["reason"].to_list()
    assert strict == ["false_step", "false_step", "false_step", None]  # the default is unchanged
    lenient = steps_filter(frame, {"allow_fixed": True})["reason"].to_list()
    assert lenient == [None, "false_step", "false_step", None]


def test_journey_traces_pass_allow_fixed_and_count_as_fixed(prefect_api, tmp_path):
    problems = tmp_path / "new.jsonl"  # no answers: the journeys' gold is the majority
    with problems.open("w") as f:
        for q in make_problems("arithmetic", 12, seed=3, difficulty=(1, 2)):
            f.write(json.dumps({"question": q.question}) + "\n")
    recipe = {
        "name": "journeys",
        "problems": {"source": str(problems)},
        "engine": {"kind": "sim", "error_rate": 0.1},
        # errors of arithmetic (a copied operand makes a true equation: not a false step)
        "generate": {
            "method": "journey",
            "samples": 4,
            "keep_sources": False,
            "error_types": ["arithmetic_slip", "sign_error"],
        },
        "filters": ["format", {"steps": {"allow_fixed": True}}, "answer", "dedup"],
    }
    warehouse = str(tmp_path / "w.duckdb")
    summary = run_recipe(parse_recipe(recipe, "test"), warehouse)
    assert summary["kept"] >= 8
    with Warehouse(warehouse, read_only=True) as wh:
        kept = wh.sql("SELECT thought FROM traces WHERE status = 'kept'")["thought"].to_list()
    counts = [fixed_errors(t) for t in kept]
    assert all(wrong >= 1 and fixed == wrong for wrong, fixed in counts), counts
    # what the loop reports for a run: every kept journey fixes its error
    stats = self_correction(warehouse, summary["run_id"])
    assert stats.with_fix >= len(kept) and stats.traces >= stats.with_fix
