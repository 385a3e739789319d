"""`reasonfactory train` on our exports: real CLI, real TRL, a model built from scratch.

SFT on an `export sft` folder (assistant-only loss through the student's `{% generation %}`
template) and DPO on an `export dpo` folder; the saved folder loads with transformers
(weights, tokenizer, chat template) and generates, and a `models` row records its lineage.
That vLLM loads what `train` saves is tested by the loop (tests/test_loop.py), whose every
model is a `train` output served by the vllm engine.
"""

from __future__ import annotations

import json

import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.train import train_and_record
from reasonfactory.generators.prompts import build_messages
from reasonfactory.generators.student import StudentShape, build_student
from reasonfactory.generators.train import TrainConfig
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.export_tree import export_dpo
from reasonfactory.warehouse.store import Warehouse

pytestmark = pytest.mark.slow

SMALL = StudentShape(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=256,
)


def test_student_tokenizer_is_one_token_per_character_and_renders_exports_like_requests(
    tmp_path,
):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(build_student(tmp_path / "s", SMALL))
    assert tok.tokenize("12*7") == ["1", "2", "*", "7"]
    asked = tok.apply_chat_template(
        list(build_messages("Compute 3 + 4.")), add_generation_prompt=True, tokenize=False
    )
    exported = tok.apply_chat_template(
        [{"role": "user", "content": "Compute 3 + 4."}], add_generation_prompt=True, tokenize=False
    )
    assert asked == exported == "<|bos|>Compute 3 + 4.\n"


def test_train_cli_sft_saves_a_loadable_model_and_its_lineage(cli, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = {
        "name": "sft-data",
        "problems": {"source": "builtin:arithmetic", "limit": 40, "difficulty": [1, 1]},
        "engine": {"kind": "sim", "error_rate": 0.0},
        "generate": {"method": "self_output", "samples": 1},
    }
    warehouse = tmp_path / "wh.duckdb"
    (tmp_path / "r.yaml").write_text(json.dumps(recipe))
    cli("run", "r.yaml", "-w", str(warehouse), check=True)
    cli("export", "sft", "--out", "sft", "-w", str(warehouse), check=True)
    base = build_student(tmp_path / "base", SMALL)
    (tmp_path / "train.yaml").write_text("max_steps: 8\nbatch_size: 8\nlogging_steps: 1\n")
    proc = cli(
        "--verbose", "train", "--data", "sft", "--base", str(base), "--out", "out",
        "--config", "train.yaml", "-w", str(warehouse), check=True,
    )  # fmt: skip
    assert "saved to" in proc.stdout
    # The loss lines go to the reasonfactory.train logger (stderr, with --verbose), not
    # stdout: once they were printed as dicts between the loop's table rows.
    assert "grad_norm" not in proc.stdout and "train step 8:" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("model")
    out = tmp_path / "out"
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and "generation" in tok.chat_template
    before = AutoModelForCausalLM.from_pretrained(base)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before.get_parameter(n))]
    assert moved  # training changed the weights
    ids = tok.apply_chat_template(
        list(build_messages("Compute 3 + 4.")), add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )  # fmt: skip
    gen = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 5 or tok.eos_token_id in gen[0].tolist()
    with Warehouse(warehouse, read_only=True) as wh:
        row = wh.sql("SELECT * FROM models").row(0, named=True)
        run_id = wh.sql("SELECT run_id FROM runs")["run_id"][0]
    data, metrics = json.loads(row["data"]), json.loads(row["metrics"])
    assert row["path"] == str(out.resolve()) and row["parent"] == str(base.resolve())
    assert data["rows"] == 40 and data["runs"] == {run_id: 40}
    assert metrics["steps"] == 8 and metrics["train_loss"] > 0
    again = cli("train", "--data", "sft", "--base", str(base), "--out", "out", "-w", str(warehouse))
    assert again.returncode == 1 and "not empty" in again.stderr


def test_train_errors_name_the_problem(cli, tmp_path):
    base = build_student(tmp_path / "base", SMALL)
    (tmp_path / "empty").mkdir()
    proc = cli("train", "--data", "empty", "--base", str(base), "--out", "o")
    assert proc.returncode == 1 and "not an export folder" in proc.stderr
    (tmp_path / "bad.yaml").write_text("max_steps: -3\n")
    proc = cli(
        "train", "--data", "empty", "--base", str(base), "--out", "o", "--config", "bad.yaml"
    )
    assert proc.returncode == 1 and "max_steps" in proc.stderr


def test_dpo_export_trains(prefect_api, tmp_path):
    from transformers import AutoModelForCausalLM

    recipe = {
        "name": "tree-dpo",
        "problems": {"source": "builtin:arithmetic", "limit": 6, "difficulty": [3, 4]},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "tree", "rollouts": 6, "width": 4},
    }
    warehouse = tmp_path / "wh.duckdb"
    run_recipe(parse_recipe(recipe), str(warehouse))
    export_dpo(warehouse, tmp_path / "dpo", fmt="hf")
    base = build_student(tmp_path / "base", SMALL)
    config = TrainConfig(kind="dpo", max_steps=2, batch_size=2, learning_rate=1e-3)
    row = train_and_record([tmp_path / "dpo"], base, tmp_path / "out", config, warehouse)
    assert json.loads(row["metrics"])["steps"] == 2
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.hidden_size == 64
    with pytest.raises(Exception, match="needs the columns"):
        export_sft(warehouse, tmp_path / "sft")
        train_and_record([tmp_path / "sft"], base, tmp_path / "o2", config)
