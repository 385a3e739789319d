"""What every trainer here shares (SFT and DPO through TRL, the PRM through transformers):
its `TrainingArguments` from a `TrainConfig`, and where its log lines go: the
`reasonfactory.train` logger (shown with `reasonfactory --verbose`), not stdout, where with
tqdm off transformers prints every log dict (`PrinterCallback`) between the lines our
commands print (the loop's tables)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

log = logging.getLogger("reasonfactory.train")


def log_to_logger(trainer) -> None:
    """Route `trainer`'s log dicts to the logger; keep its progress bars (stderr)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class ToLogger(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_local_process_zero and logs:
                log.info("train step %d: %s", state.global_step, logs)

    class BarsOnly(ProgressCallback):
        """The progress bars without the log dicts it writes through them (to stdout)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            return None

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarsOnly())
    trainer.add_callback(ToLogger())


def trainer_settings(args_class, config, output_dir: Path, use_cpu: bool) -> dict:
    """The `TrainingArguments` every trainer here takes from a `TrainConfig` (SFT and DPO
    through TRL's configs, the PRM through transformers' own): no saving mid-run, no
    reporting, no tqdm, one data-loading process."""
    fields = getattr(args_class, "__dataclass_fields__", {})
    # transformers >= 5.20 renamed gradient_checkpointing to activation_checkpointing.
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    return dict(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=math.ceil(config.warmup_ratio * config.max_steps),
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=[],
        use_cpu=use_cpu,
        bf16=config.bf16,
        dataloader_num_workers=0,
        seed=config.seed,
        disable_tqdm=True,
        **{ckpt: config.gradient_checkpointing},
    )
