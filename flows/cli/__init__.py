"""The `reasonfactory` command line: demo, run, import, query, export, stats, refilter,
decontam, schedule, deploy, check, report, eval, train, loop, models, server, doctor.

Every command takes `--warehouse` (or $REASONFACTORY_WAREHOUSE; default
./reasonfactory.duckdb). Bad input or configuration prints one `error:` line and exits 1;
a traceback means a bug. One module per group of commands; each adds itself to `app`.
"""

from __future__ import annotations

import os
import sys

from reasonfactory.flows.cli import (  # noqa: F401  (they register commands)
    check,
    data,
    deploy,
    doctor,
    export,
    loop,
    models,
    pulled,
    report,
    run,
    server,
)
from reasonfactory.flows.cli.app import app, err
from reasonfactory.flows.cli.run import Interrupted
from reasonfactory.flows.runtime import configure_prefect
from reasonfactory.warehouse.errors import UserError

__all__ = ["app", "main"]


def main() -> None:
    configure_prefect()  # before any command imports Prefect
    try:
        app()
    except (Interrupted, KeyboardInterrupt) as exc:
        err.print(str(exc) or "interrupted", markup=False, highlight=False, soft_wrap=True)
        # Leave at once: interpreter shutdown after an interrupt only adds noise (native
        # extensions report leaked objects) and Prefect's exit hooks; what is committed is.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except UserError as exc:
        for line in getattr(exc, "lines", None) or [str(exc)]:  # BadLines: one line each
            err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        # As after an interrupt: the error line is all there is to say (interpreter shutdown
        # after a failed flow had native extensions print ~50 lines of leaked objects).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
