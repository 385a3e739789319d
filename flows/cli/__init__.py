"""The `reasonfactory` command line: demo, run, import, query, export, stats, refilter,
decontam, schedule, report.

Every command takes `--warehouse` (or $REASONFACTORY_WAREHOUSE; default
./reasonfactory.duckdb). Bad input or configuration prints one `error:` line and exits 1;
a traceback means a bug. One module per group of commands; each adds itself to `app`.
"""

from __future__ import annotations

import sys

from reasonfactory.flows.cli import data, export, report, run  # noqa: F401  (they register commands)
from reasonfactory.flows.cli.app import app, err
from reasonfactory.flows.runtime import configure_prefect
from reasonfactory.warehouse.errors import UserError

__all__ = ["app", "main"]


def main() -> None:
    configure_prefect()  # before any command imports Prefect
    try:
        app()
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
