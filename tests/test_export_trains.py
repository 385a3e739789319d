"""The SFT export is a dataset TRL trains on: real flow -> export -> `datasets` -> `SFTTrainer`.

Generates traces with the `sim` engine through the real `generate` flow, exports them in all
three formats and checks each loads with `datasets` to the same rows in the documented shape
(`messages` = [user, assistant], the assistant turn `<think>\\n...\\n</think>\\n\\n` then a
`\\boxed{}` answer). The slow test then trains a tiny random Llama for two steps on the `hf`
export with TRL's `SFTTrainer`, as a user would, and checks that it learned something: the
loss on the exported conversations is lower after training than before.
"""

from __future__ import annotations

import math
import re

import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.export import export_sft
from tiny_models import build_tiny_causal_lm, tiny_training_args

RECIPE = {
    "name": "t",
    "problems": {"source": "builtin:arithmetic", "limit": 30},
    "engine": {"kind": "sim", "error_rate": 0.1},
    "generate": {"method": "self_output", "samples": 4},
}
COLUMNS = {"messages", "problem_id", "trace_id", "method", "model"}
BOXED_TAIL = re.compile(r"\\boxed\{[^{}]+\}")
# Room for the whole chat: the user turn is the prompt the model was asked (meta.prompt),
# the solve prompt with its worked example, not the bare question.
MAX_LENGTH = 1024


def generate_traces(warehouse_path) -> dict:
    summary = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert summary["kept"] > 0, summary
    return summary


def check_sft_row(row: dict) -> None:
    assert set(row) >= COLUMNS, sorted(row)
    user, assistant = row["messages"]
    assert (user["role"], assistant["role"]) == ("user", "assistant")
    assert user["content"].strip()
    text = assistant["content"]
    assert text.startswith("<think>\n"), text[:40]
    thought, sep, answer = text.partition("\n</think>\n\n")
    assert sep and thought.removeprefix("<think>\n").strip(), text
    assert BOXED_TAIL.search(answer), answer


def test_export_formats_load_with_datasets(prefect_api, warehouse_path, tmp_path):
    import datasets

    summary = generate_traces(warehouse_path)
    cache = str(tmp_path / "hf-cache")
    loaded = {}
    for fmt in ("hf", "parquet", "jsonl"):
        out = tmp_path / f"sft-{fmt}"
        result = export_sft(warehouse_path, out, fmt=fmt)
        if fmt == "hf":
            ds = datasets.load_from_disk(str(out))
        elif fmt == "parquet":
            ds = datasets.load_dataset(
                "parquet", data_files=str(out / "data.parquet"), split="train", cache_dir=cache
            )
        else:
            ds = datasets.load_dataset(
                "json", data_files=str(out / "data.jsonl"), split="train", cache_dir=cache
            )
        assert result["rows"] == ds.num_rows == summary["kept"], (fmt, result, summary)
        assert (out / "README.md").exists()
        loaded[fmt] = ds.to_list()

    rows = loaded["hf"]
    for row in rows:
        check_sft_row(row)
    assert len({r["trace_id"] for r in rows}) == len(rows)
    assert {r["method"] for r in rows} == {"self_output"}
    assert all(r["model"] for r in rows)
    assert loaded["parquet"] == rows
    assert loaded["jsonl"] == rows


@pytest.mark.slow
def test_sft_export_trains_with_trl(prefect_api, warehouse_path, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    generate_traces(warehouse_path)
    out = tmp_path / "sft"
    export_sft(warehouse_path, out, fmt="hf")
    train = datasets.load_from_disk(str(out))
    corpus = [m["content"] for row in train["messages"] for m in row]
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-lm", corpus)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    probe = [tokenizer.apply_chat_template(m, tokenize=False) for m in train["messages"][:16]]
    loss_before = _mean_loss(model, tokenizer, probe)
    config = tiny_training_args(SFTConfig, tmp_path / "run", max_length=MAX_LENGTH, max_steps=4)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)

    # TRL rendered the export's `messages` with the chat template, untruncated.
    first = trainer.train_dataset[0]["input_ids"]
    rendered = tokenizer.apply_chat_template(train[0]["messages"], tokenize=False)
    assert tokenizer.decode(first) == rendered
    assert max(len(ids) for ids in trainer.train_dataset["input_ids"]) < MAX_LENGTH

    trainer.train()

    assert trainer.state.global_step == 4
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses), trainer.state.log_history
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "no parameter changed after four optimizer steps"
    loss_after = _mean_loss(model, tokenizer, probe)
    assert loss_after < loss_before - 0.05, (loss_before, loss_after)  # it learned the data


def _mean_loss(model, tokenizer, texts: list[str]) -> float:
    """Mean next-token loss of the model on the texts (eval mode, no gradient)."""
    import torch

    model.eval()
    with torch.no_grad():
        losses = []
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            losses.append(model(input_ids=ids, labels=ids).loss.item())
    model.train()
    return sum(losses) / len(losses)
