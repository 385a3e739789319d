"""`beam` and `dvts` (generators/methods/beam.py): step search guided by a step scorer.

The scorer here is a real one, `equations` (our arithmetic verifier as a step scorer: 1 for
a step whose claims recompute, 0 for a slip), on the sim at error_rate 0.3: it prefers the
known-good steps, so beam search must find them; DVTS's subtrees must never share a node
below the root; a beam run goes through the flow and `export prm` reads its nodes.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import BeamConfig, DvtsConfig, beam
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.steps import check_equations
from reasonfactory.warehouse.export_tree import export_prm
from reasonfactory.warehouse.store import Warehouse

PROBLEMS = {"source": "builtin:arithmetic", "limit": 20, "difficulty": [3, 4]}


def _problems():
    return load_problems(PROBLEMS["source"], limit=PROBLEMS["limit"], difficulty=(3, 4))


def _search(config, problems=None):
    return beam(
        problems if problems is not None else _problems(),
        SimEngine(error_rate=0.3),
        config,
        RunContext("run", "fp-" + config.method, "sim"),
    )


def _first_traces(out) -> pl.DataFrame:
    return out.traces.filter(pl.col("meta").str.json_path_match("$.rank") == "0")


def test_beam_with_a_scorer_that_prefers_good_steps_finds_them():
    config = BeamConfig(beams=4, width=4, aggregate="min", scorer={"kind": "equations"})
    out = _search(config)
    first = _first_traces(out)
    assert first.height == 20  # every problem finished a path
    right = first.filter(pl.col("predicted") == pl.col("gold"))
    # A path is lost only when every candidate of a depth slipped: identical samples merge,
    # so the one right step of a depth gets `width` samples, all wrong with p = 0.3 ** 4.
    assert right.height >= 18, first.select("thought", "gold")
    for row in right.iter_rows(named=True):
        steps = row["thought"].split("\n\n")
        assert all(check_equations(s).ok for s in steps), row["thought"]
        assert json.loads(row["meta"])["prm_scores"] == [1.0] * len(steps)
    # The same sampler with no guidance (one path, one sample per step) is wrong most times:
    # the search, not the sampler, found the good steps.
    blind = _search(BeamConfig(beams=1, width=1, aggregate="min", scorer={"kind": "equations"}))
    blind_right = (_first_traces(blind)["predicted"] == _first_traces(blind)["gold"]).sum()
    assert blind_right < 12, blind_right
    # Every expanded step is a node with its score; no depth keeps more than `beams` paths.
    steps = out.nodes.filter(pl.col("meta").str.json_path_match("$.kind") == "step")
    scored = steps["meta"].str.json_path_match("$.prm_score").is_not_null()
    assert scored.sum() > 20 * 4 * 2
    expanded = steps.join(
        out.nodes.select(pl.col("tree_id"), pl.col("parent_id").alias("node_id")).unique(),
        on=["tree_id", "node_id"],
    )
    per_depth = expanded.group_by("tree_id", "depth").len()
    assert per_depth["len"].max() <= 4


def test_beam_aggregate_last_trusts_the_latest_step_only():
    # `last` with a verifier that judges each step alone lets a slip through when later
    # steps are locally right; `min` does not. (A PRM trained on outcome labels scores the
    # steps after a slip low, which is why `last` is search-and-learn's default.)
    last = _first_traces(
        _search(BeamConfig(beams=4, width=4, aggregate="last", scorer={"kind": "equations"}))
    )
    wrong = last.filter(pl.col("predicted") != pl.col("gold"))
    assert wrong.height > 0
    for row in wrong.iter_rows(named=True):
        assert json.loads(row["meta"])["prm_scores"][-1] == 1.0


def test_dvts_keeps_subtrees_apart():
    config = DvtsConfig(beams=4, width=3, aggregate="min", traces_per_problem=4,
                        scorer={"kind": "equations"})  # fmt: skip
    out = _search(config, _problems().head(10))
    nodes = out.nodes
    for tree_id, tree in nodes.group_by("tree_id"):
        parents = set(tree["parent_id"].drop_nulls())
        # Each subtree expands only its own path: at most `beams` nodes expanded per depth,
        # and the root's children come from `beams` separate requests (one per subtree).
        expanded = tree.filter(pl.col("node_id").is_in(parents) & (pl.col("depth") > 0))
        assert expanded.group_by("depth").len()["len"].max() <= 4, tree_id
        # No two finished paths share a step: subtrees never merge.
    for pid, traces in out.traces.group_by("problem_id"):
        paths = [json.loads(m)["path"] for m in traces["meta"]]
        assert len(paths) >= 2, pid
        seen: set[str] = set()
        for path in paths:
            steps = set(path[:-1])
            assert not steps & seen, (pid, paths)
            seen |= steps
    first = _first_traces(out)
    assert (first["predicted"] == first["gold"]).all()


def test_beam_same_config_same_traces():
    config = BeamConfig(beams=2, width=3, aggregate="prod", scorer={"kind": "equations"})
    a, b = _search(config, _problems().head(6)), _search(config, _problems().head(6))
    assert a.traces.drop("created_at").equals(b.traces.drop("created_at"))


@pytest.mark.slow
def test_beam_runs_through_the_flow_and_exports_prm(prefect_api, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    recipe = {
        "name": "beam",
        "problems": {**PROBLEMS, "limit": 8},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "beam", "beams": 3, "width": 2, "aggregate": "min",
                     "scorer": {"kind": "equations"}},
    }  # fmt: skip
    summary = run_recipe(parse_recipe(recipe), str(warehouse))
    # Deterministic (seeded); with 3 beams of 2 samples some problems lose every right step.
    assert summary["generated"] == 8 and summary["kept"] >= 4, summary
    with Warehouse(warehouse, read_only=True) as wh:
        nodes = wh.sql("SELECT count(*) AS n FROM nodes WHERE meta->>'prm_score' IS NOT NULL")
        assert nodes["n"][0] > 8 * 3
    out = export_prm(warehouse, tmp_path / "prm", fmt="jsonl")
    with open(out["path"], encoding="utf-8") as f:
        rows = [json.loads(x) for x in f]
    assert len(rows) >= 8 and all(len(r["completions"]) == len(r["labels"]) for r in rows)
    assert any(not all(r["labels"]) for r in rows)  # slips explored are labelled bad


def test_a_beam_recipe_without_a_scorer_says_so():
    from reasonfactory.flows.recipe_files import RecipeError

    recipe = {"name": "b", "problems": PROBLEMS, "engine": {"kind": "sim"}}
    with pytest.raises(RecipeError, match=r"missing key 'generate.scorer'"):
        parse_recipe({**recipe, "generate": {"method": "beam"}})
    with pytest.raises(RecipeError, match=r"generate.scorer.*model"):
        parse_recipe({**recipe, "generate": {"method": "dvts", "scorer": {"kind": "prm"}}})
