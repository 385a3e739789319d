"""Prefect flows, recipes and the `reasonfactory` CLI: wiring over the library packages."""

import logging
import os

# Prefect's telemetry fails without internet and sometimes locks its SQLite file.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Library modules log progress under `reasonfactory.*` (e.g. tree search rounds); show it with
# Prefect's own logs, in the terminal and the UI.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "reasonfactory")
logging.getLogger("reasonfactory").setLevel(logging.INFO)
# Outside a flow run (a generator called from a notebook or a test) those logs stay local.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
