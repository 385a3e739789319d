"""Process settings for Prefect, applied by the CLI before Prefect is imported.

Nothing here runs on import: `configure_prefect()` sets defaults in `os.environ` (a value the
user set wins) and is called by `reasonfactory.flows.cli.main`. A notebook or a test that drives
the flows directly calls it itself, or sets what it needs.
"""

from __future__ import annotations

import logging
import os
import re

DEFAULTS = {
    # Prefect's telemetry fails without internet and sometimes locks its SQLite file.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Library modules log progress under `reasonfactory.*` (e.g. tree search rounds); show it
    # with Prefect's own logs, in the terminal and the UI.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "reasonfactory",
    # Outside a flow run (a generator called from a notebook or a test) those logs stay local.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # `datasets` draws a tqdm bar per save/map; the CLI shows its own progress.
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


class HideHandledErrors(logging.Filter):
    """Drops Prefect's task and flow run records about an error the CLI reports itself:
    a `UserError` (bad input or configuration: the CLI's `error:` line), and, once Ctrl-C was
    pressed, the shards it cancelled and the flow's "Crash detected" (the CLI's one
    `interrupted:` line). A traceback stays for what is a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        from reasonfactory.flows.interrupts import PRESSED
        from reasonfactory.warehouse.errors import UserError

        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:  # "Finished in state Failed('... encountered an exception NAME: ...')"
            failed = _FAILED.search(record.getMessage())
            if failed and failed.group(1) in _names(UserError):
                return False
        return not isinstance(exc, UserError) and not PRESSED.is_set()


_FAILED = re.compile(r"encountered an exception (\w+):")


def _names(cls: type) -> set[str]:
    """The names of `cls` and all its subclasses (a failed state names its exception)."""
    names, todo = set(), [cls]
    while todo:
        c = todo.pop()
        names.add(c.__name__)
        todo += c.__subclasses__()
    return names


# The CLI's quiet console: no "Task run ... Completed()" per task, no flow-run lines, no
# temporary-server notice. The bar and the summary say what happened; `--verbose` brings the
# logs back. A value the user set in the environment still wins.
QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
}


def set_console_logs(verbose: bool) -> None:
    """Quiet Prefect's per-task and per-flow log lines (and ours), or, verbose, show them.

    Call before Prefect is imported (its logging is configured on import).

    >>> sorted(QUIET)[0]
    'PREFECT_LOGGING_LEVEL'
    """
    if verbose:
        for key in QUIET:
            if key != "PREFECT_LOGGING_LEVEL":
                os.environ[key] = "INFO"
        ours = logging.getLogger("reasonfactory")
        ours.setLevel(logging.INFO)
        # Our INFO lines (a training step's loss, a shard's retries) reach the console even
        # where no Prefect logger config would pass them on (`train`'s steps).
        if not any(getattr(h, "reasonfactory_console", False) for h in ours.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            handler.reasonfactory_console = True
            ours.addHandler(handler)
            ours.propagate = False
        return
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    logging.getLogger("reasonfactory").setLevel(logging.WARNING)


def configure_prefect() -> None:
    """Set the defaults above where the environment has no value of its own.

    >>> configure_prefect(); os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] in ("false", "true")
    True
    """
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("reasonfactory").setLevel(logging.INFO)
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideHandledErrors) for f in logger.filters):
            logger.addFilter(HideHandledErrors())
