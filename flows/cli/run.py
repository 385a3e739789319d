"""Commands that run flows: demo, run, refilter, schedule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, check_limit, err, out
from reasonfactory.flows.progress import showing_progress
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import resolve_path


def _run_and_report(recipe, warehouse: Path | None, limit: int | None) -> None:
    from reasonfactory.flows.preflight import check_recipe

    check_recipe(recipe)  # in well under a second, before a server or an engine starts
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.local_server import prefect_api

    path = resolve_path(warehouse).resolve()
    if recipe.problems.curriculum is not None:  # rounds (flows/curriculum.py)
        from reasonfactory.flows.cli.gym import run_curriculum_and_report

        with prefect_api(), showing_progress(err):
            return run_curriculum_and_report(recipe, str(path), limit, print_summary)
    try:
        with prefect_api(), showing_progress(err):
            summary = run_recipe(recipe, str(path), limit)
    except KeyboardInterrupt:
        raise Interrupted(_committed(recipe, path)) from None
    print_summary(summary)


class Interrupted(UserError):
    """Ctrl-C: what is stored and how to go on (printed as one line, exit 130)."""


def _committed(recipe, path: Path) -> str:
    from reasonfactory.warehouse.store import Warehouse

    try:
        with Warehouse(path, read_only=True) as wh:
            done = wh.con.execute(
                "SELECT count(*), coalesce(sum(n_traces), 0) FROM progress "
                "WHERE fingerprint = ? AND method = ?",
                [recipe.fingerprint, recipe.generate.method],
            ).fetchone()
    except Exception as exc:  # the warehouse may not exist yet, or be locked
        return f"interrupted before anything could be counted in {path} ({exc})"
    return (
        f"interrupted: run {recipe.run_id} has {done[0]} problems ({done[1]} traces) stored in "
        f"{path}; run the same command again to resume with the rest"
    )


@app.command()
def demo(
    warehouse: WarehouseOpt = None,
    limit: Annotated[int | None, typer.Option(help="Problems to generate for.")] = None,
) -> None:
    """Run the built-in demo recipe: 200 arithmetic problems, 8 samples each, sim engine.

    Takes a few seconds after Prefect starts. The `sim` engine is a simulator, not a model:
    it makes step-level mistakes at a set rate so the filters have something to catch.
    """
    from reasonfactory.flows.recipe import DEMO_RECIPE, parse_recipe

    check_limit(limit)
    recipe = parse_recipe(DEMO_RECIPE, "demo recipe")
    _run_and_report(recipe, warehouse, limit)
    where = resolve_path(warehouse)
    out.print(
        "\nNext:\n"
        f"  reasonfactory stats -w {where}\n"
        f'  reasonfactory query -w {where} "SELECT status, reject_reason, count(*) FROM traces '
        'GROUP BY ALL ORDER BY 3 DESC"\n'
        f"  reasonfactory export sft -w {where} --out ./demo-sft",
        soft_wrap=True,
    )


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    warehouse: WarehouseOpt = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N problems.")] = None,
) -> None:
    """Run a recipe: load problems, generate, filter, store. Re-running resumes it.

    Example recipe:

        name: gsm8k-style\n
        problems: {source: builtin:arithmetic, limit: 100}\n
        engine: {kind: sim, error_rate: 0.2}\n
        generate: {method: self_output, samples: 8, temperature: 0.8}\n
        filters: \\[answer, format]
    """
    from reasonfactory.flows.recipe import load_recipe

    check_limit(limit)
    _run_and_report(load_recipe(recipe), warehouse, limit)


@app.command()
def refilter(
    run_id: Annotated[str, typer.Option("--run", help="The run whose traces to re-filter.")],
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="A recipe (or a YAML with only `filters: [...]`) whose filters to apply; "
            "default: the run's own."
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Re-apply a filter set to a run's stored traces, generating nothing.

    Every trace stays; status, reject_reason, correct, lang and meta.verdicts are rewritten,
    and the run's stored recipe then lists these filters (so `stats` shows their funnel).
    Running it twice with the same filters changes nothing.

    Example: reasonfactory refilter --run r_0cd6f202b38c5e84 --recipe strict.yaml

    where strict.yaml is e.g.

        filters: \\[format, answer, {length: {max_tokens: 4096}}, {language: {lang: en}}, dedup]
    """
    from reasonfactory.flows.local_server import prefect_api
    from reasonfactory.flows.refilter import filters_from_file, run_refilter, stored_filters

    path = str(resolve_path(warehouse).resolve())
    specs = filters_from_file(str(recipe)) if recipe else stored_filters(path, run_id)
    try:
        with prefect_api(), showing_progress(err):
            s = run_refilter(run_id, path, specs)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: re-filtering {run_id} stopped part-way (each finished batch has its "
            "new verdicts); run the same command again to finish"
        ) from None
    out.print(f"\nrun {s['run_id']} re-filtered in {s['warehouse']}")
    names = [f if isinstance(f, str) else next(iter(f)) for f in s["filters"]]
    out.print(f"  filters: {', '.join(names) or 'none'}", highlight=False)
    out.print(f"  funnel: traces {s['traces']} -> kept {s['kept']}")
    for reason, n in s["rejected"].items():
        out.print(f"    rejected {reason}: {n}", markup=False, highlight=False)
    if "rescored" in s:
        out.print(f"  an eval run: its statuses stay 'eval'; {s['rescored']} evals rows re-scored")
    out.print(f"  time: {s['seconds']:.1f} s")


def check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise UserError(
            f'--cron {cron!r}: not a cron expression; five fields, e.g. "0 * * * *" (hourly)'
        ) from None


def need_server(why: str) -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError(
            f"{why}. Run `prefect server start` in another terminal and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )


RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.")]
CRON_HELP = 'Cron expression, e.g. "0 * * * *" (hourly).'
DeploymentNameOpt = Annotated[
    str | None, typer.Option(help="Deployment name (default: recipe name).")
]


@app.command()
def schedule(
    recipe: RecipeArg,
    cron: Annotated[str, typer.Option(help=CRON_HELP)],
    name: DeploymentNameOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Serve the generate flow as a Prefect deployment on a cron schedule, until Ctrl-C or SIGTERM.

    Cron runs need a Prefect server (its scheduler creates them): start one with
    `prefect server start` and point PREFECT_API_URL at it, e.g.
    PREFECT_API_URL=http://127.0.0.1:4200/api reasonfactory schedule r.yaml --cron "0 * * * *"
    """
    check_cron(cron)
    need_server(
        "schedule needs a Prefect server with a scheduler: the local server other commands "
        "start has none, so cron runs would never start"
    )
    from reasonfactory.flows.generate import generate
    from reasonfactory.flows.recipe import load_recipe
    from reasonfactory.flows.serving import serve_until_stopped

    rec = load_recipe(recipe)
    path = str(resolve_path(warehouse).resolve())
    deployment = name or rec.name
    stopped_by = serve_until_stopped(
        generate,
        name=deployment,
        cron=cron,
        parameters=deployment_parameters(rec, path),
        ready=lambda: err.print(
            f"serving recipe {rec.name!r} as deployment 'generate/{deployment}' on cron "
            f"{cron!r}, warehouse {path}; Ctrl-C or SIGTERM stops",
            markup=False,
            highlight=False,
            soft_wrap=True,
        ),
    )
    # Stopping is how a scheduler ends, so a stop by signal exits 0 (as a service should).
    err.print(
        f"stopped by {stopped_by}: deployment 'generate/{deployment}' is paused, "
        "no cron runs until it is served again",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def deployment_parameters(recipe, warehouse: str) -> dict:
    """The flow parameters a deployment stores: the recipe as written, without what a run
    fills in from outside it (a model folder's weights stamp), so each scheduled run stamps
    the folder as it is then: a model trained again in place is a new run, never served the
    old model's samples. Problem sources are made absolute for a worker in another folder.
    """
    data = recipe.to_data(stamps=False)
    data["problems"]["source"] = absolute_source(data["problems"]["source"])
    return {"recipe": data, "warehouse": warehouse, "limit": None}


def absolute_source(source: str) -> str:
    """A problem source a worker in another folder finds: file, glob and hf: paths made
    absolute; built-in families unchanged.

    >>> absolute_source("builtin:arithmetic")
    'builtin:arithmetic'
    """
    if source.startswith(("builtin:", "gym:")):
        return source
    if source.startswith("hf:"):
        return "hf:" + os.path.abspath(source[3:])
    return os.path.abspath(source)


def print_summary(s: dict) -> None:
    out.print(f"\nrun {s['run_id']} stored in {s['warehouse']}")
    out.print(
        f"  problems: {s['problems']} ({s['problems_generated']} generated this time, the rest "
        "were already done)"
    )
    out.print(f"  funnel: generated {s['generated']} -> kept {s['kept']}")
    for reason, n in s["rejected"].items():
        out.print(f"    rejected {reason}: {n}")
    if r := s.get("refiltered"):
        out.print(
            f"  re-filtered {r['traces']} stored traces of {r['problems']} problems "
            f"({r['why']}): kept {r['kept']}"
        )
    if "sandbox" in s:
        out.print(f"  sandbox: {s['sandbox']}", markup=False, highlight=False)
    rate = s["generated"] / s["seconds"] if s["seconds"] else 0.0
    out.print(
        f"  time: {s['seconds']:.1f} s ({rate:.0f} traces/s), engine {s['engine_seconds']:.1f} s "
        f"in {s['engine_calls']} calls"
    )
