"""The `loop` command: cold start, then rounds of generate -> filter -> export -> train -> eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import app, out


@app.command()
def loop(
    loop_file: Annotated[Path, typer.Argument(help="A loop YAML (see examples/).")],
) -> None:
    """Run (or resume) a self-improvement loop and print held-out pass@1 per round against
    its compute-matched control. Everything lands in the loop's work folder."""
    from reasonfactory.flows.loop import compare_table, loop_table, run_loop

    done, config = run_loop(loop_file)
    print_loop_table(loop_table(done, config.rounds))
    if config.compare:
        print_compare_table(compare_table(done, config))


def _pct(row: dict, prefix: str = "") -> str:
    value = row.get(f"{prefix}pass1")
    if value is None:
        return "-"
    low, high = row[prefix + "ci_low"], row[prefix + "ci_high"]
    return f"{100 * value:5.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def print_loop_table(rows: list[dict]) -> None:
    out.print(
        f"{'model':<22} {'verified rows':>13}  {'held-out pass@1 [95% CI]':<26} "
        f"control (same steps, seed only)",
        highlight=False,
        soft_wrap=True,
    )
    for row in rows:
        verified = "-" if row.get("verified") is None else str(row["verified"])
        out.print(
            f"{row['model']:<22} {verified:>13}  {_pct(row):<26} {_pct(row, 'control_')}",
            highlight=False,
            soft_wrap=True,
        )


def _n(value) -> str:
    return "-" if value is None else str(value)


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_compare_table(rows: list[dict]) -> None:
    """Round 1's data against each `compare` arm: same cold start, problems and steps."""
    out.print(
        "\nround 1 made each way (same cold start, round 1's problems in order, same "
        "training steps; budget: generated tokens against round 1's or compare_budget's):\n"
        f"{'data':<20} {'problems':>8} {'completions':>11} {'tokens':>8} {'budget':>6} "
        f"{'verified':>8}  "
        f"{'held-out pass@1 [95% CI]':<26} {'false step':>10} {'fixed':>6} {'fixed+right':>11}",
        highlight=False,
        soft_wrap=True,
    )
    for r in rows:
        out.print(
            f"{r['arm']:<20} {_n(r['problems']):>8} {_n(r['completions']):>11} "
            f"{_n(r['tokens']):>8} {_ratio(r['budget_ratio']):>6} "
            f"{_n(r['verified']):>8}  {_pct(r):<26} {_n(r['with_error']):>10} "
            f"{_n(r['with_fix']):>6} {_n(r['fix_correct']):>11}",
            highlight=False,
            soft_wrap=True,
        )
