"""`deploy`: the generate flow as a deployment on a Prefect process work pool.

A worker (`prefect worker start --pool NAME`, on this machine or any other that has
reasonfactory installed and reaches the Prefect server) picks up its runs: on the cron
schedule, or when started by hand (`prefect deployment run generate/NAME`). Unlike
`schedule`, nothing stays in the foreground. The deployment holds the recipe as it was
deployed (deploy again after editing it), the warehouse path and the problem source made
absolute, since a worker runs flows in a folder of its own.
"""

from __future__ import annotations

from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, err, out
from reasonfactory.flows.cli.run import (
    CRON_HELP,
    DeploymentNameOpt,
    RecipeArg,
    check_cron,
    deployment_parameters,
    need_server,
)
from reasonfactory.warehouse.store import resolve_path


@app.command()
def deploy(
    recipe: RecipeArg,
    pool: Annotated[str, typer.Option(help="Process work pool (created if missing).")],
    cron: Annotated[str | None, typer.Option(help=CRON_HELP)] = None,
    name: DeploymentNameOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Create (or update) a deployment of the generate flow on a Prefect process work pool.

    Needs a Prefect server (PREFECT_API_URL); a worker runs it:
    prefect worker start --pool NAME
    """
    if cron is not None:
        check_cron(cron)
    need_server("deploy needs a Prefect server that workers reach")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import ObjectNotFound
    from reasonfactory.flows.generate import generate
    from reasonfactory.flows.recipe import load_recipe

    rec = load_recipe(recipe)
    path = str(resolve_path(warehouse).resolve())
    parameters = deployment_parameters(rec, path)
    with get_client(sync_client=True) as client:
        try:
            found = client.read_work_pool(pool)
            if found.type != "process":
                err.print(f"note: work pool {pool!r} is of type {found.type!r}, not process")
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            err.print(f"created process work pool {pool!r}")
    deployment = generate.to_deployment(
        name=name or rec.name,
        cron=cron,
        parameters=parameters,
        work_pool_name=pool,
        # The worker imports the flow from the installed package, not from a file path.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    deployment.apply(work_pool_name=pool)
    when = f"on cron {cron!r}" if cron else "when started"
    out.print(f"deployment generate/{deployment.name} on pool {pool!r}, runs {when}")
    out.print(f"  warehouse {path}, problems {parameters['recipe']['problems']['source']}")
    out.print(f"  start a worker: prefect worker start --pool {pool}")
    out.print(f"  run it now:     prefect deployment run generate/{deployment.name}")
