"""Train a model on our exports with TRL: SFT (assistant-only loss on `messages`) or DPO;
a PRM (`kind: prm`, on `export prm`) with transformers' Trainer (generators/train_prm.py).

`train_model(data, base, out, config)` reads one or more export folders (`export sft` /
`export dpo` output in any of its formats: a `save_to_disk` folder, `data.parquet` or
`data.jsonl`), trains from the `base` folder and saves to `out` a folder that transformers
and vLLM load: weights (safetensors), config, tokenizer and its chat template. It returns
what it did (steps, rows, loss, seconds) for the `models` table.

SFT uses `assistant_only_loss`, which needs `{% generation %}` markers in the chat template
(the student's has them, `generators.student`); without them TRL refuses, and the error says
so. `TrainConfig` defaults suit a tiny model on a CPU (fp32, a high learning rate, no
packing); for a real model on a GPU set `bf16: true, learning_rate: 1e-5, packing: true,
gradient_checkpointing: true, batch_size: 4, gradient_accumulation_steps: 8` (see README).

Not here: exporting (warehouse/export.py) and recording lineage (the flows write `models`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.trainers import log_to_logger, trainer_settings
from reasonfactory.warehouse.errors import UserError


class TrainConfig(StrictModel):
    """Training settings (`--config train.yaml`); CPU defaults for a tiny model."""

    kind: Literal["sft", "dpo", "prm"] = "sft"
    max_steps: int = Field(200, ge=1, description="optimizer steps (-1 in TRL terms is not used)")
    learning_rate: float = Field(3e-3, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(32, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(512, ge=8)
    assistant_only_loss: bool = True
    packing: bool = False
    bf16: bool = False
    gradient_checkpointing: bool = False
    beta: float = Field(0.1, gt=0, description="DPO temperature")
    seed: int = 0
    use_cpu: bool | None = Field(None, description="None: CPU when no GPU is visible")
    logging_steps: int = Field(50, ge=1)
    cpu_threads: int | None = Field(
        1, ge=1, description="torch threads on a CPU (None: torch's default)"
    )
    # kind prm (generators/train_prm.py): the share of problems held out to measure AUROC,
    # and the text between the question and each step (the step boundary: no step has one).
    holdout: float = Field(0.1, ge=0, lt=1)
    step_separator: str = Field("\n\n", min_length=1)


def load_export(folders: list[str | Path]):
    """The rows of one or more export folders as one `datasets.Dataset`.

    An export folder holds a `save_to_disk` dataset, `data.parquet` or `data.jsonl`.
    """
    import datasets

    parts = []
    for folder in folders:
        folder = Path(folder)
        if (folder / "dataset_info.json").exists():
            parts.append(datasets.load_from_disk(str(folder)))
        elif (folder / "data.parquet").exists():
            parts.append(datasets.Dataset.from_parquet(str(folder / "data.parquet")))
        elif (folder / "data.jsonl").exists():
            parts.append(datasets.Dataset.from_json(str(folder / "data.jsonl")))
        else:
            raise UserError(
                f"{folder}: not an export folder (no dataset_info.json, data.parquet or "
                "data.jsonl); make one with `reasonfactory export sft|dpo --out DIR`"
            )
    if len(parts) == 1:
        return parts[0]
    columns = set.intersection(*(set(p.column_names) for p in parts))
    return datasets.concatenate_datasets([p.select_columns(sorted(columns)) for p in parts])


def train_model(
    data: list[str | Path], base: str | Path, out: str | Path, config: TrainConfig
) -> dict:
    """Train `base` on the export(s) `data`; save the model folder `out`; return metrics."""
    if config.kind == "prm":
        from reasonfactory.generators.train_prm import train_prm

        return train_prm(load_export(data), data, base, out, config)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dataset = load_export(data)
    needed = {"sft": {"messages"}, "dpo": {"prompt", "chosen", "rejected"}}[config.kind]
    missing = needed - set(dataset.column_names)
    if missing:
        raise UserError(
            f"{', '.join(map(str, data))}: a {config.kind} export needs the columns "
            f"{sorted(needed)}; missing {sorted(missing)} (export with `export {config.kind}`)"
        )
    if dataset.num_rows == 0:
        raise UserError(f"{', '.join(map(str, data))}: no rows to train on")
    dataset = dataset.select_columns(sorted(needed))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    template = tokenizer.chat_template or ""
    if config.kind == "sft" and config.assistant_only_loss and "generation" not in template:
        raise UserError(
            f"{base}: assistant_only_loss needs {{% generation %}} markers in the chat "
            "template; add them or set assistant_only_loss: false"
        )
    use_cpu = not torch.cuda.is_available() if config.use_cpu is None else config.use_cpu
    # vLLM's CPU attention checks that torch's thread count is the one its engine was built
    # with, and an engine may live on in this process (the loop, eval): give it back after.
    threads = torch.get_num_threads()
    if use_cpu and config.cpu_threads is not None:
        # A tiny model gains nothing from more threads, and on a shared CPU two threads
        # were 11x slower per step than one (0.77 s against 8.4 s, bench machine, load 8).
        torch.set_num_threads(config.cpu_threads)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        args = _trainer_args(config, Path(out) / ".trainer", use_cpu)
        started = time.perf_counter()
        if config.kind == "sft":
            from trl import SFTTrainer

            trainer = SFTTrainer(
                model=model, args=args, train_dataset=dataset, processing_class=tokenizer
            )
        else:
            from trl import DPOTrainer

            trainer = DPOTrainer(
                model=model, args=args, train_dataset=dataset, processing_class=tokenizer
            )
        log_to_logger(trainer)
        result = trainer.train()
        seconds = time.perf_counter() - started
        out = Path(out)
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        return {
            "rows": dataset.num_rows,
            "steps": trainer.state.global_step,
            "epochs": round(trainer.state.epoch or 0.0, 3),
            "train_loss": round(result.training_loss, 5),
            "last_loss": round(losses[-1], 5) if losses else None,
            "seconds": round(seconds, 2),
        }
    finally:
        torch.set_num_threads(threads)


def _trainer_args(config: TrainConfig, output_dir: Path, use_cpu: bool):
    if config.kind == "sft":
        from trl import SFTConfig as Args
    else:
        from trl import DPOConfig as Args
    settings = trainer_settings(Args, config, output_dir, use_cpu)
    settings["max_length"] = config.max_length
    if config.kind == "sft":
        settings.update(assistant_only_loss=config.assistant_only_loss, packing=config.packing)
    else:
        settings.update(beta=config.beta)
    return Args(**settings)
