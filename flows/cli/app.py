"""The `reasonfactory` Typer app and what every command shares: consoles and options.

Command modules (`run`, `data`, `export`) add their commands to `app`; the package's
`__init__` imports them and holds `main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.runtime import set_console_logs
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import ENV_VAR
from rich.console import Console

app = typer.Typer(
    help="reasonfactory: generate, verify, filter, store and export reasoning traces.\n\n"
    "Start with `reasonfactory demo`, then `reasonfactory stats`, `reasonfactory query` and "
    "`reasonfactory export sft`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _console(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's flow and task log lines.")
    ] = False,
) -> None:
    set_console_logs(verbose)


export_app = typer.Typer(help="Export traces as Hugging Face datasets.", no_args_is_help=True)
app.add_typer(export_app, name="export")


out = Console()


err = Console(stderr=True)


WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        "-w",
        envvar=ENV_VAR,
        show_default="./reasonfactory.duckdb",
        help="The DuckDB warehouse file.",
    ),
]


OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]


FormatOpt = Annotated[str, typer.Option("--format", help="hf (save_to_disk) | parquet | jsonl")]


OverwriteOpt = Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")]


def run_export(export, noun: str, warehouse, out_dir, where, fmt, overwrite, **options) -> None:
    """Run one export (a spinner while it works) and print what it wrote."""
    from reasonfactory.flows.progress import spinner

    with spinner(err, f"export {noun}"):
        result = export(warehouse, out_dir, where=where, fmt=fmt, overwrite=overwrite, **options)
    report_export(result, noun)


def report_export(result: dict, noun: str = "rows") -> None:
    out.print(
        f"exported {result['rows']} {noun} ({result['format']}) to {result['path']} "
        f"where {result['where']}"
    )


def check_limit(limit: int | None) -> None:
    """`--limit N` is a positive count (0 once meant "everything", -5 "nothing")."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: expected a positive number of problems")
