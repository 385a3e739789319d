"""Prefect flows, recipes and the `reasonfactory` CLI: wiring over the library packages."""

import os

# Prefect's telemetry fails without internet and sometimes locks its SQLite file.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
