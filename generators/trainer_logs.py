"""Where a transformers Trainer's log lines go: the `reasonfactory.train` logger (shown with
`reasonfactory --verbose`), not stdout, where with tqdm off transformers prints every log
dict (`PrinterCallback`) between the lines our commands print (the loop's tables)."""

from __future__ import annotations

import logging

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
