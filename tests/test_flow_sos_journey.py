"""End to end: sos and journey recipes through the real flow into DuckDB, queried with SQL,
exported with `export sft` and trained on with TRL's SFTTrainer."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from journey_checks import check_journey
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.store import Warehouse
from sos_grammar import evaluate_expression, parse_sos
from test_export_trains import check_sft_row
from tiny_models import build_tiny_causal_lm, tiny_training_args

SOS = {
    "name": "countdown-sos",
    "problems": {"source": "builtin:countdown", "limit": 30},
    "generate": {"method": "sos", "samples": 4, "shard_size": 16},
    "filters": ["format", "answer"],
}
JOURNEY = {
    "name": "linear-journey",
    "problems": {"source": "builtin:linear", "limit": 30},
    "engine": {"kind": "sim", "error_rate": 0.15},
    "generate": {"method": "journey", "from": "inject", "detours": 2, "samples": 4},
    "filters": ["format", "answer"],
}
ERRORS_SQL = """
SELECT t.trace_id, e->>'type' AS type, e->>'written' AS written,
       substr(t.thought, (e->>'error_start')::INT + 1,
              (e->>'error_end')::INT - (e->>'error_start')::INT) AS wrong_step
FROM traces t, unnest(json_extract(t.meta, '$.journey.errors[*]')) AS u(e)
WHERE t.method = 'journey' AND t.status = 'kept'
"""


def test_sos_recipe_from_the_cli(cli, tmp_path):
    recipe = tmp_path / "sos.yaml"
    recipe.write_text(yaml.safe_dump(SOS))
    wh = str(tmp_path / "wh.duckdb")
    run = cli("run", str(recipe), "-w", wh, check=True)
    assert "no_solution" in run.stdout, run.stdout
    query = cli(
        "query",
        "-w",
        wh,
        "--format",
        "json",
        "SELECT t.thought, t.response, t.predicted, t.status, t.reject_reason, t.correct,"
        " p.gold FROM traces t JOIN problems p USING (problem_id)",
        check=True,
    )
    rows = json.loads(query.stdout)
    assert len(rows) == 120
    kept = [r for r in rows if r["status"] == "kept"]
    assert kept and {r["reject_reason"] for r in rows if r["status"] != "kept"} == {"no_solution"}
    for r in kept:
        replay = parse_sos(r["thought"])
        value, literals = evaluate_expression(r["predicted"])
        assert replay["solved"] and r["correct"] is True
        assert value == replay["target"] == int(r["gold"])
        assert sorted(literals) == sorted(replay["numbers"])
    again = cli("run", str(recipe), "-w", wh, check=True)
    assert "(0 generated this time" in again.stdout, again.stdout


def test_journey_recipe_end_to_end(prefect_api, warehouse_path):
    summary = run_recipe(parse_recipe(JOURNEY), str(warehouse_path))
    assert summary["engine_calls"] == 1  # the base traces: one batched call for the shard
    with Warehouse(warehouse_path, read_only=True) as wh:
        methods = wh.sql("SELECT method, status, count(*) AS n FROM traces GROUP BY ALL")
        rows = wh.sql(
            "SELECT t.*, p.gold FROM traces t JOIN problems p USING (problem_id) "
            "WHERE method = 'journey' AND status = 'kept'"
        )
        errors = wh.sql(ERRORS_SQL)
        sources = wh.sql("SELECT trace_id, thought FROM traces WHERE method = 'self_output'")
    assert set(methods["method"]) == {"journey", "self_output"}
    assert rows.height >= 20
    base = dict(zip(sources["trace_id"], sources["thought"], strict=True))
    for row in rows.iter_rows(named=True):
        source = json.loads(row["meta"])["journey"]["source_trace_id"]
        check_journey(row, plain_thought=base[source])
    # Users find every error with SQL, and the offsets point at the wrong step.
    assert errors.height >= rows.height
    for written, wrong_step in zip(errors["written"], errors["wrong_step"], strict=True):
        assert written in wrong_step
    assert set(errors["type"]) <= {"arithmetic_slip", "sign_error", "wrong_operand", "dropped_term"}
    again = run_recipe(parse_recipe(JOURNEY), str(warehouse_path))
    assert again["problems_generated"] == 0 and again["engine_calls"] == 0


@pytest.mark.slow
def test_sft_export_of_sos_and_journey_trains_with_trl(cli, prefect_api, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    wh = tmp_path / "wh.duckdb"
    run_recipe(parse_recipe(SOS), str(wh))
    run_recipe(parse_recipe(JOURNEY), str(wh))
    out = tmp_path / "sft"
    where = "method IN ('sos', 'journey') AND length(thought) < 900"
    cli("export", "sft", "-w", str(wh), "--out", str(out), "--where", where, check=True)
    train = datasets.load_from_disk(str(out))
    assert set(train["method"]) == {"sos", "journey"}
    for row in train:
        check_sft_row(row)
    corpus = [m["content"] for row in train["messages"] for m in row]
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-lm", corpus)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = tiny_training_args(SFTConfig, tmp_path / "run", max_length=1024)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)
    assert max(len(ids) for ids in trainer.train_dataset["input_ids"]) < 1024  # not truncated
    first = trainer.train_dataset[0]["input_ids"]
    assert tokenizer.decode(first) == tokenizer.apply_chat_template(
        train[0]["messages"], tokenize=False
    )
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert trainer.state.global_step == 2 and len(losses) == 2
    assert all(math.isfinite(x) for x in losses)
    assert any(not torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
