"""Train a model on exports and record its lineage in the `models` table.

Wiring over `generators.train.train_model`: it trains and saves the folder, then one
`models` row says where it came from: the parent folder, the export folders with the run
ids and row counts of their traces (looked up by `trace_id` in the warehouse), the settings
and the training metrics.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from reasonfactory.generators.train import TrainConfig, load_export, train_model
from reasonfactory.warehouse.ids import digest
from reasonfactory.warehouse.store import Warehouse


def data_lineage(warehouse: str | Path | None, data: list[str | Path]) -> dict:
    """Export folders, and per run the number of rows taken from it (when the warehouse has
    the traces; DPO pairs, which have no trace id, count as rows only)."""
    dataset = load_export(data)
    lineage = {"exports": [str(Path(d).resolve()) for d in data], "rows": dataset.num_rows}
    if warehouse is not None and "trace_id" in dataset.column_names and Path(warehouse).exists():
        ids = pl.DataFrame({"trace_id": dataset["trace_id"]})
        with Warehouse(warehouse, read_only=True) as wh:
            wh.con.register("_rf_ids", ids)
            runs = wh.con.execute(
                "SELECT run_id, count(*) FROM traces JOIN _rf_ids USING (trace_id) "
                "GROUP BY run_id ORDER BY run_id"
            ).fetchall()
        lineage["runs"] = {run_id: n for run_id, n in runs}
    return lineage


def train_and_record(
    data: list[str | Path],
    base: str | Path,
    out: str | Path,
    config: TrainConfig,
    warehouse: str | Path | None = None,
    parent: str | None = None,
    final_path: str | Path | None = None,
) -> dict:
    """Train, save `out`, and (with a warehouse) add its `models` row; returns the row.

    `final_path`: where the folder will live when the caller saves under a temporary name
    and renames it once complete (the loop does)."""
    lineage = data_lineage(warehouse, data)
    metrics = train_model(data, base, out, config)
    # The prm-only settings are left out of other kinds' records (and so of their ids).
    prm_only = set() if config.kind == "prm" else {"holdout", "step_separator"}
    settings = config.model_dump(mode="json", exclude=prm_only)
    path = Path(final_path or out).resolve()
    row = {
        "model_id": "m_" + digest(path, parent or Path(base).resolve(), lineage, settings),
        "path": str(path),
        "parent": parent or str(Path(base).resolve()),
        "kind": config.kind,
        "data": json.dumps(lineage),
        "recipe": json.dumps(settings),
        "metrics": json.dumps(metrics),
        "created_at": datetime.now(UTC),
    }
    if warehouse is not None:
        with Warehouse(warehouse) as wh:
            wh.ingest_all({"models": pl.DataFrame([row])}, replace={"models": ("model_id",)})
    return row
