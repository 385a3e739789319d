"""A run's row in `runs`, and its Prefect flow run, from start to finish.

`start` records the run as running under this process (`runs.owner`) and this Prefect flow
run (`runs.flow_run`), and returns the recipe it had before (a re-run compares its filters).
A process killed with `kill -9` never records its end: its row stays `running` (`stats`
reads it as `crashed`, warehouse/liveness.py) and so did its Prefect flow run. `start`
marks the flow runs of such dead runs of the warehouse `Crashed` in Prefect, so Prefect's
UI and `prefect flow-run ls` stop showing them as running.

Not here: waiting for a run another live process holds (warehouse/locking.py `run_lock`).
"""

from __future__ import annotations

import json
import logging

from reasonfactory.warehouse.liveness import owner_alive
from reasonfactory.warehouse.store import Warehouse

log = logging.getLogger("reasonfactory.runs")


def start(wh: Warehouse, recipe) -> str | None:
    """Record `recipe`'s run as running; returns the run's stored recipe (None if new)."""
    crashed_flow_runs(wh)
    before = wh.start_run(
        {
            "run_id": recipe.run_id,
            "recipe_name": recipe.name,
            "recipe": recipe.to_yaml(),
            "fingerprint": recipe.fingerprint,
            "kind": recipe.kind,
            "flow_run": _current_flow_run(),
        }
    )
    return before["recipe"] if before else None


def finish(wh: Warehouse, run_id: str, status: str, meta: dict) -> None:
    wh.finish_run(run_id, status, json.dumps(meta))


def crashed_flow_runs(wh: Warehouse) -> list[str]:
    """Mark `Crashed` in Prefect the flow runs of this warehouse's runs whose process is gone
    while they read `running`; returns their ids. Runs owned on another host are left as
    they are (their process cannot be checked from here)."""
    rows = wh.sql("SELECT run_id, owner, flow_run FROM runs WHERE status = 'running'")
    dead = [r["flow_run"] for r in rows.iter_rows(named=True) if owner_alive(r["owner"]) is False]
    marked = []
    for flow_run in filter(None, dead):
        try:
            if _mark_crashed(flow_run):
                marked.append(flow_run)
        except Exception as exc:  # Prefect's bookkeeping must never stop a run
            log.warning("could not mark Prefect flow run %s crashed: %r", flow_run, exc)
    return marked


def _current_flow_run() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id


def _mark_crashed(flow_run: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(flow_run)
        except ObjectNotFound:  # another Prefect server's run (a temporary one, gone)
            return False
        if run.state is None or run.state.is_final():
            return False
        client.set_flow_run_state(
            flow_run,
            Crashed(message="its process died without recording an end (kill -9 or a lost host)"),
            force=True,
        )
        return True
