"""`train --kind prm` (generators/train_prm.py) and the PRM scorer (generators/engines/prm.py).

- On rows whose bad steps carry a visible mark, a tiny student learns to score them low:
  the labels sit where the scorer reads (a label one token off would not separate them).
- Through the CLI on a real `tree` run's `export prm`: the model folder, its lineage row and
  its held-out metrics; the scorer reads a causal PRM's step scores the same whether a path
  is scored whole or cut short; `method: beam` runs with it as its scorer.
"""

from __future__ import annotations

import json
import random

import pytest
from reasonfactory.generators.engines.prm import PrmConfig, PrmScorer
from reasonfactory.generators.student import StudentShape, build_student
from reasonfactory.generators.train import TrainConfig, train_model
from reasonfactory.warehouse.store import Warehouse

pytestmark = pytest.mark.slow

SMALL = StudentShape(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
)


def _marked_rows(n: int) -> list[dict]:
    """Problems of 2-4 steps; a step is bad exactly when it says `oops`."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        steps, labels = [], []
        for k in range(rng.randint(2, 4)):
            bad = rng.random() < 0.4
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            steps.append(f"Step {k + 1}: {a} + {b} = {a + b}{' oops' if bad else ''}.")
            labels.append(not bad)
        rows.append({"prompt": f"Problem {i}", "completions": steps, "labels": labels,
                     "problem_id": f"p{i}"})  # fmt: skip
    return rows


def test_prm_learns_a_signal_at_the_step_positions(tmp_path):
    data = tmp_path / "prm"
    data.mkdir()
    with open(data / "data.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in _marked_rows(300))
    base = build_student(tmp_path / "base", SMALL)
    config = TrainConfig(kind="prm", max_steps=60, batch_size=16, learning_rate=3e-3,
                         holdout=0.2, logging_steps=10)  # fmt: skip
    metrics = train_model([data], base, tmp_path / "out", config)
    assert metrics["heldout_steps"] >= 100 and metrics["heldout_bad"] > 20
    assert metrics["heldout_auroc"] > 0.95, metrics
    scorer = PrmScorer.load(PrmConfig(model=str(tmp_path / "out"), device="cpu"))
    good, bad = scorer.score_steps(
        [("Problem 9", ["Step 1: 2 + 3 = 5.", "Step 2: 5 + 1 = 6 oops."])]
    )[0]
    assert good > 0.5 > bad


def test_train_cli_prm_on_a_tree_export_then_beam_with_it(cli, tmp_path):
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe

    recipe = {
        "name": "prm-data",
        "problems": {"source": "builtin:arithmetic", "limit": 40, "difficulty": [3, 4]},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "tree", "rollouts": 6, "width": 4},
    }
    warehouse = tmp_path / "wh.duckdb"
    (tmp_path / "r.yaml").write_text(json.dumps(recipe))
    cli("run", "r.yaml", "-w", str(warehouse), check=True)
    cli("export", "prm", "--out", "prm", "-w", str(warehouse), check=True)
    base = build_student(tmp_path / "base", SMALL)
    (tmp_path / "t.yaml").write_text("kind: prm\nmax_steps: 6\nbatch_size: 8\nholdout: 0.3\n")
    cli(
        "train", "--data", "prm", "--base", str(base), "--out", "out", "--config", "t.yaml",
        "--kind", "prm", "-w", str(warehouse), check=True,
    )  # fmt: skip
    out = tmp_path / "out"
    assert json.loads((out / "reasonfactory_prm.json").read_text())["separator"] == "\n\n"
    with Warehouse(warehouse, read_only=True) as wh:
        row = wh.sql("SELECT * FROM models").row(0, named=True)
    metrics = json.loads(row["metrics"])
    assert metrics["steps"] == 6 and metrics["heldout_steps"] > 20
    assert 0 <= metrics["heldout_auroc"] <= 1
    assert row["kind"] == "prm"

    # A causal PRM: a step's score does not depend on the steps after it, in any batch.
    scorer = PrmScorer.load(PrmConfig(model=str(out), device="cpu", batch_size=2))
    steps = ["Step 1: 4 + 5 = 9.", "Step 2: 9 * 2 = 18.", "Step 3: 18 - 3 = 15."]
    whole = scorer.score_steps([("Compute ((4 + 5) * 2) - 3.", steps)])[0]
    cut = scorer.score_steps([("Compute ((4 + 5) * 2) - 3.", steps[:k]) for k in (1, 2, 3)])
    assert [c[-1] for c in cut] == pytest.approx(whole, abs=1e-5)

    beam = {
        "name": "beam-prm",
        "problems": {"source": "builtin:arithmetic", "limit": 4, "difficulty": [3, 3], "seed": 7},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "beam", "beams": 2, "width": 2, "scorer": {"model": str(out)}},
    }
    summary = run_recipe(parse_recipe(beam), str(tmp_path / "beam.duckdb"))
    assert summary["generated"] == 4
    with Warehouse(tmp_path / "beam.duckdb", read_only=True) as wh:
        scores = wh.sql("SELECT (meta->>'prm_score')::DOUBLE AS s FROM nodes")["s"].drop_nulls()
    assert scores.len() >= 8 and ((scores > 0) & (scores < 1)).all()

    prm = {"kind": "prm", "model": str(out)}
    best = {
        "name": "bon-prm",
        "problems": {"source": "builtin:arithmetic", "limit": 4, "difficulty": [3, 3], "seed": 7},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "self_output", "samples": 3,
                     "selection": {"by": "best_of_n", "verifier": prm}},
    }  # fmt: skip
    run_recipe(parse_recipe(best), str(tmp_path / "bon.duckdb"))
    with Warehouse(tmp_path / "bon.duckdb", read_only=True) as wh:
        sel = wh.sql("SELECT meta->'selection' AS s FROM traces")["s"].to_list()
    sel = [json.loads(s) for s in sel]
    assert len(sel) == 12 and {s["verifier"] for s in sel} == {"prm"}
    assert sum(s["selected"] for s in sel) == 4 and all(0 < s["value"] < 1 for s in sel)
