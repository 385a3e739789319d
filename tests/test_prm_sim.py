"""A PRM trained by `train --kind prm` on sim tree data scores held-out steps by correctness.

`tree` searches built-in arithmetic problems on the sim at error_rate 0.3 (a slip writes a
result off by 1-10 or 20); its nodes go into a real DuckDB warehouse and out through `export
prm`; a tiny student (generators/student.py) is trained on them and scored on the problems
`holdout` kept back, each distinct step once. In a tree export a bad step always ends its
path (the verifier stops there), so "last step" and "bad" coincide in every row; a causal
PRM cannot see whether a step is last, so the only signal it can learn is the step's own
arithmetic. The first test pins the layout: every label sits on the separator after its
step, and each tree node is labelled once.
"""

from __future__ import annotations

import json

import pytest
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.prm import prm_inputs
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.tree import TreeConfig, tree
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.student import build_student
from reasonfactory.generators.train import TrainConfig, train_model
from reasonfactory.generators.train_prm import first_sightings
from reasonfactory.warehouse.export_tree import export_prm
from reasonfactory.warehouse.store import Warehouse

PROBLEMS = 400


@pytest.fixture(scope="module")
def sim_prm_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prm-sim")
    problems = load_problems("builtin:arithmetic", limit=PROBLEMS, difficulty=(3, 4), seed=5)
    found = tree(problems, SimEngine(error_rate=0.3), TreeConfig(rollouts=6, width=4),
                 RunContext("r_prm", "fp", "sim"))  # fmt: skip
    with Warehouse(tmp / "wh.duckdb") as wh:
        wh.ingest("problems", problems)
        wh.ingest("nodes", found.nodes)
    export_prm(tmp / "wh.duckdb", tmp / "prm", fmt="jsonl")
    rows = [json.loads(line) for line in (tmp / "prm" / "data.jsonl").read_text().splitlines()]
    return tmp, rows


def test_labels_sit_on_the_separator_after_their_step_once_per_node(sim_prm_export, tmp_path):
    _, rows = sim_prm_export
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(build_student(tmp_path / "base")))
    for row in rows[:50]:
        ids, at = prm_inputs(tokenizer, row["prompt"], row["completions"], "\n\n")
        for step, p in zip(row["completions"], at, strict=True):
            assert tokenizer.decode(ids[: p + 1]).endswith(step + "\n\n")
    # Bad steps end their paths: a layout fact the PRM must not (and, causal, cannot) use.
    assert all(r["labels"][:-1] == [True] * (len(r["labels"]) - 1) for r in rows)
    fresh = first_sightings(rows)
    nodes = {(r["tree_id"], n) for r in rows for n in r["node_ids"]}
    assert sum(map(sum, fresh)) == len(nodes) < sum(len(r["node_ids"]) for r in rows)


@pytest.mark.slow
def test_a_prm_trained_on_sim_tree_data_ranks_held_out_steps_above_chance(sim_prm_export):
    """Issue 25 asks for AUROC > 0.8; a 1M-parameter student from random weights gets about
    0.6 in minutes of CPU (0.63 here, 60 steps; README: the PRM section). This pins what it
    does learn: the loss falls and held-out steps rank above chance, over >= 200 distinct
    held-out steps. Not yet the issue's test: that needs a PRM that learns the arithmetic."""
    tmp, _ = sim_prm_export
    base = build_student(tmp / "base")
    config = TrainConfig(kind="prm", max_steps=60, batch_size=32, holdout=0.3, logging_steps=10)
    metrics = train_model([tmp / "prm"], base, tmp / "out", config)
    print("held-out AUROC", metrics["heldout_auroc"], metrics)
    assert metrics["heldout_steps"] >= 200 and metrics["heldout_bad"] >= 80, metrics
    assert metrics["last_loss"] < metrics["first_loss"], metrics
    assert metrics["heldout_auroc"] > 0.55, metrics
