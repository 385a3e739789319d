"""The node contract between `tree` and `journey`: journeys linearised from real search trees.

`journey` with `from: tree` grows trees with the registered `tree` method and walks into their
failed branches. Every kept journey must pass the journey invariants (tests/journey_checks.py),
and each detour's wrong claim must be one a stored node failed on.
"""

from __future__ import annotations

import json

import polars as pl
from journey_checks import check_journey
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.problems.sources import load_problems


def test_journeys_from_real_trees_walk_into_failed_steps():
    problems = load_problems("builtin:arithmetic", limit=10, difficulty=(4, 5))
    config = JourneyConfig.model_validate(
        {"from": "tree", "detours": 2, "per_problem": 2, "tree": {"rollouts": 8, "width": 4}}
    )
    out = journey(
        problems, SimEngine(error_rate=0.3, wordings=2), config, RunContext("r", "f", "s")
    )
    traces = apply_filters(out.traces, [FilterSpec("format"), FilterSpec("answer")])
    kept = traces.filter(method="journey", status="kept")
    assert kept.height >= 8
    failed = {
        (row["tree_id"], row["node_id"]): json.loads(row["meta"])["check"]["claim"]
        for row in out.nodes.filter(pl.col("correct") == False).iter_rows(named=True)  # noqa: E712
        if json.loads(row["meta"])["check"]
    }
    for row in kept.iter_rows(named=True):
        errors = check_journey(row)
        source = json.loads(row["meta"])["journey"]
        for error in errors:
            keys = [(source["tree_id"], n) for n in error["wrong_nodes"]]
            claims = {failed[k] for k in keys if k in failed}  # the detour ends at a failed step
            assert error["wrong_claim"] in claims, (error, claims)
