"""`report`: one self-contained HTML file to look at a warehouse (plots, traces, trees)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, err, out
from reasonfactory.flows.progress import spinner
from reasonfactory.warehouse.errors import UserError


@app.command()
def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    sample: Annotated[
        int, typer.Option(help="Traces in the browser per method and status (a sample).")
    ] = 200,
    trees: Annotated[int, typer.Option(help="Search trees in the tree viewer.")] = 12,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write an HTML report: funnel, lengths, accuracy, pass@k, languages, reject reasons and
    tree plots, a trace browser and a tree viewer. One file, works offline.

    Example: reasonfactory report --out report.html && xdg-open report.html
    """
    from reasonfactory.warehouse.report import build_report, write_report
    from reasonfactory.warehouse.store import Warehouse

    if sample < 0 or trees < 0:
        raise UserError("--sample and --trees are counts: 0 or more")
    started = time.perf_counter()
    with spinner(err, "report"), Warehouse(warehouse, read_only=True) as wh:
        data = build_report(wh, run_id, sample=sample, trees=trees)
        path = write_report(data, out_file)
    size = path.stat().st_size / 1e6
    out.print(
        f"report of {data['total_traces']} traces ({data['sampled_traces']} in the browser, "
        f"{len(data['trees'])} trees) written to {path} ({size:.1f} MB) in "
        f"{time.perf_counter() - started:.1f} s",
        soft_wrap=True,
    )
