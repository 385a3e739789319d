"""What the loop's evidence rests on, through the real generate flow, real TRL and real
DuckDB files, with the sim engine standing in for the student (what is checked is what the
loop reads and trains on, not the text): the harvest never reads a gold answer, and
training seeds change only data order and init.

tests/test_loop.py runs the loop end to end with a trained student served by vLLM.
"""

from __future__ import annotations

import json

import yaml
from reasonfactory.flows.loop import run_loop
from reasonfactory.flows.loop_config import LoopConfig, make_pools
from reasonfactory.flows.loop_ledger import Generation, Trained
from reasonfactory.flows.loop_seeds import seed_table
from reasonfactory.flows.loop_stages import generate, generation_recipe, write_pools
from reasonfactory.flows.refilter import refilter
from reasonfactory.warehouse.store import Warehouse

SIM = {"kind": "sim", "error_rate": 0.4}
CONFIG = {
    "name": "evidence",
    "problems": {"seed_set": 8, "held_out": 8, "per_round": 24},
    "engine": SIM,
    "teacher": {"kind": "sim", "error_rate": 0.0},
    "rounds": 1,
}


def harvest(warehouse, run: Generation) -> list[tuple]:
    with Warehouse(warehouse, read_only=True) as wh:
        return wh.sql(
            "SELECT p.question, t.thought, t.predicted FROM traces t JOIN problems p "
            "USING (problem_id) WHERE t.run_id = ? AND t.status = 'kept' ORDER BY 1, 2",
            [run.run_id],
        ).rows()


def test_the_harvest_never_reads_a_gold_answer(prefect_api, tmp_path):
    config = LoopConfig.model_validate(CONFIG)
    pools = write_pools(config, tmp_path)
    recipe = generation_recipe(config, "r1:generate", "sim", pools.rounds[0])
    clean = tmp_path / "clean.duckdb"
    made = generate(recipe, clean)
    kept = harvest(clean, made)
    assert 0 < len(kept) < made.traces  # the filters (steps, answer, vote) chose

    # The same problems stored first with a wrong gold (same source names, so the same
    # problem ids) in another warehouse: the round's and the held-out problems.
    poisoned = tmp_path / "poisoned.duckdb"
    (tmp_path / "poison").mkdir()
    answers = {q.question: q.gold for items in make_pools(config).values() for q in items}
    for name in ("round-1", "heldout"):
        text = (tmp_path / "problems" / f"{name}.jsonl").read_text()
        rows = [json.loads(x) for x in text.splitlines()]
        path = tmp_path / "poison" / f"{name}.jsonl"
        path.write_text(
            "".join(
                json.dumps({**r, "answer": str(int(answers[r["question"]]) + 1)}) + "\n"
                for r in rows
            )
        )
        store = {**CONFIG, "engine": {**SIM, "error_rate": 0.0}, "filters": ["format"]}
        store = LoopConfig.model_validate({**store, "generate": {"samples": 1}})
        generate(generation_recipe(store, f"poison-{name}", "sim", str(path)), poisoned)
    with Warehouse(poisoned, read_only=True) as wh:
        golds = wh.sql("SELECT gold FROM problems WHERE source = 'round-1'")["gold"].to_list()
    assert len(golds) == 24 and all(g is not None for g in golds)

    again = generate(recipe, poisoned)
    assert harvest(poisoned, again) == kept
    with Warehouse(poisoned, read_only=True) as wh:
        sources = wh.sql(
            "SELECT DISTINCT t.meta->>'gold_source' AS s FROM traces t WHERE run_id = ?",
            [again.run_id],
        )["s"].to_list()
    assert "problem" not in sources  # judged by the samples' majority, never by a stored gold

    # Re-judging what is stored (`reasonfactory refilter`, or a re-run with other filters)
    # judges as the run did: still without the stored (poisoned) golds.
    refilter(again.run_id, str(poisoned))
    assert harvest(poisoned, again) == kept


def test_seeds_change_only_data_order_and_init(prefect_api, tmp_path):
    loop = {
        **CONFIG,
        "seeds": 2,
        "rounds": 0,  # the cold start: every round and arm trains its seeds the same way
        "student": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "intermediate_size": 64, "max_position_embeddings": 256},
        "train": {"max_steps": 2, "batch_size": 8},
        "round_steps": 1,
    }  # fmt: skip
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(loop))
    ledger, config = run_loop(path)
    work = tmp_path / "seeds"
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        models = {
            m["path"].rsplit("/", 1)[-1]: m
            for m in wh.sql("SELECT path, parent, data, recipe FROM models").rows(named=True)
        }
    assert set(models) == {"round-0", "round-0-s1"}
    a, b = models["round-0"], models["round-0-s1"]
    assert a["data"] == b["data"]  # the same training rows
    ra, rb = json.loads(a["recipe"]), json.loads(b["recipe"])
    assert {k for k in ra if ra[k] != rb.get(k)} == {"seed"}  # and only the seed differs
    assert rb["seed"] == ra["seed"] + 1
    # each seed from its own start: student-0 / student-0-s1, built with another seed
    assert a["parent"].endswith("student-0") and b["parent"].endswith("student-0-s1")
    init = [(work / "models" / f).joinpath("model.safetensors").read_bytes()
            for f in ("student-0", "student-0-s1")]  # fmt: skip
    assert init[0] != init[1]
    assert ledger.get("cold:train:s1", Trained).path.endswith("round-0-s1")
    table = {r["model"]: r for r in seed_table(ledger, config)}
    assert len(table["round-0 (cold start)"]["per_seed"]) == 2
