"""Prefect flows, recipes and the `reasonfactory` CLI: wiring over the library packages."""

import logging
import os

# Prefect's telemetry fails without internet and sometimes locks its SQLite file.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Engines log their own progress (requests done, seconds) under `reasonfactory.*`; Prefect
# shows those loggers' records beside its own.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "reasonfactory")
logging.getLogger("reasonfactory").setLevel(logging.INFO)
