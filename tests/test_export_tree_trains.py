"""The tree exports are datasets trainers take: DPO with TRL's DPOTrainer, PRM as PRMTrainer did.

A real `tree` run through the flow, then:
- `export dpo` (hf) trains a tiny random Llama for two steps with TRL 1.16's `DPOTrainer`;
- `export prm` (hf) is tokenised exactly as TRL <= 1.13's `PRMTrainer.tokenize_row` did (the
  trainer left TRL in 1.14, PR #7133): prompt tokens and every step's tokens -100, the step's
  label on the last token of the step separator appended to it, BOS first; then a tiny
  token-classification model trains two steps on it with `transformers.Trainer`.
Both check that the loss is finite and that parameters moved.
"""

from __future__ import annotations

import math
from itertools import chain

import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.export_tree import export_dpo, export_prm
from tiny_models import build_tiny_causal_lm, tiny_training_args

RECIPE = {
    "name": "tree-train",
    "problems": {"source": "builtin:arithmetic", "limit": 12, "difficulty": [3, 4]},
    "engine": {"kind": "sim", "error_rate": 0.3, "wordings": 2},
    "generate": {"method": "tree", "rollouts": 6, "width": 4},
}
MAX_LENGTH = 256


@pytest.fixture(scope="module")
def tree_warehouse(prefect_api, tmp_path_factory):
    path = tmp_path_factory.mktemp("tree-train") / "wh.duckdb"
    run_recipe(parse_recipe(RECIPE), str(path))
    return path


def _changed(model, before) -> list[str]:
    import torch

    return [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]


def _snapshot(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.slow
def test_dpo_export_trains_with_trl_dpo_trainer(tree_warehouse, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    export_dpo(tree_warehouse, tmp_path / "dpo", fmt="hf")
    train = datasets.load_from_disk(str(tmp_path / "dpo"))
    assert train.num_rows > 4
    corpus = [row["prompt"] + row["chosen"] + row["rejected"] for row in train]
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-lm", corpus)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    before = _snapshot(model)
    config = tiny_training_args(DPOConfig, tmp_path / "run", max_length=MAX_LENGTH)
    trainer = DPOTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)

    # TRL read the standard format: prompt, then chosen/rejected continuing it.
    first = trainer.train_dataset[0]
    assert tokenizer.decode(first["prompt_ids"], skip_special_tokens=True) == train[0]["prompt"]
    assert tokenizer.decode(first["chosen_ids"], skip_special_tokens=True) == train[0]["chosen"]

    trainer.train()

    assert trainer.state.global_step == 2
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), trainer.state.log_history
    assert _changed(model, before), "no parameter changed after two optimizer steps"


def tokenize_row_like_trl_prm(row: dict, tokenizer, step_separator: str = "\n") -> dict:
    """TRL <= 1.13 `PRMTrainer.tokenize_row` (train_on_last_step_only=False, no truncation)."""
    prompt_ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    completions_ids = [
        tokenizer(completion, add_special_tokens=False)["input_ids"]
        for completion in row["completions"]
    ]
    labels = [int(label) for label in row["labels"]]
    separator_ids = tokenizer.encode(step_separator, add_special_tokens=False)
    completions_ids = [completion + separator_ids for completion in completions_ids]
    labels = [
        [-100] * (len(c) - 1) + [label] for c, label in zip(completions_ids, labels, strict=True)
    ]
    completion_ids = list(chain(*completions_ids))
    labels = list(chain(*labels))
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    input_ids = prompt_ids + completion_ids
    labels = [-100] * len(prompt_ids) + labels
    return {"input_ids": input_ids, "labels": labels}


@pytest.mark.slow
def test_prm_export_trains_a_token_classifier_as_prm_trainer_did(tree_warehouse, tmp_path):
    import datasets
    from transformers import (
        AutoTokenizer,
        DataCollatorForTokenClassification,
        LlamaConfig,
        LlamaForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    export_prm(tree_warehouse, tmp_path / "prm", fmt="hf")
    rows = datasets.load_from_disk(str(tmp_path / "prm"))
    assert set(rows.column_names) >= {"prompt", "completions", "labels"}
    assert any(all(r) for r in rows["labels"]) and any(not all(r) for r in rows["labels"])
    corpus = [row["prompt"] + "\n" + "\n".join(row["completions"]) for row in rows]
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-lm", corpus)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    # As PRMTrainer mapped its dataset, but with the features spelled out: datasets 5 keeps
    # the removed bool `labels` column's type for the new column and turns -100 into True.
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int64")),
            "labels": datasets.List(datasets.Value("int64")),
        }
    )
    train = rows.map(
        tokenize_row_like_trl_prm,
        fn_kwargs={"tokenizer": tokenizer},
        remove_columns=rows.column_names,
        features=features,
    )
    for row, tokens in zip(rows, train, strict=True):
        supervised = [label for label in tokens["labels"] if label != -100]
        assert supervised == [int(x) for x in row["labels"]]  # one label per step, in order
        assert len(tokens["input_ids"]) == len(tokens["labels"]) < MAX_LENGTH

    base = LlamaConfig.from_pretrained(model_dir)
    config = LlamaConfig(**{**base.to_dict(), "num_labels": 2})
    model = LlamaForTokenClassification(config)
    before = _snapshot(model)
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    trainer.train()

    assert trainer.state.global_step == 2
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), trainer.state.log_history
    assert _changed(model, before), "no parameter changed after two optimizer steps"
