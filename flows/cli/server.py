"""`reasonfactory server status|stop`: the local Prefect server the commands share.

See flows/local_server.py: the first command that runs a flow starts it (unless
PREFECT_API_URL names the user's own server), later commands reuse it, and it stops by
itself after REASONFACTORY_SERVER_IDLE seconds (default 900) without a command.
"""

from __future__ import annotations

import time

import typer
from reasonfactory.flows.cli.app import app, out

server_app = typer.Typer(
    help="The local Prefect server the commands share (started by the first command that "
    "runs a flow, stopped after an idle time).",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command()
def status() -> None:
    """Say whether the local server runs: its URL, pid, and when it stops if unused."""
    import os

    from reasonfactory.flows.local_server import USED, home, idle_seconds, read_state

    if os.environ.get("PREFECT_API_URL"):
        out.print(f"PREFECT_API_URL={os.environ['PREFECT_API_URL']}: commands use that server")
    folder = home()
    state = read_state(folder)
    if state is None:
        out.print(
            f"no local server runs for {folder} (the next command that runs a flow starts one)"
        )
        return
    try:
        quiet = time.time() - (folder / USED).stat().st_mtime
    except OSError:
        quiet = 0.0
    left = max(idle_seconds() - quiet, 0.0)
    out.print(
        f"local server {state['url']} (pid {state['pid']}, Prefect home {folder}): "
        f"unused for {quiet:.0f} s, stops in about {left:.0f} s unless a command uses it",
        soft_wrap=True,
    )


@server_app.command()
def stop() -> None:
    """Stop the local server now (only the process recorded when it started)."""
    from reasonfactory.flows.local_server import home, stop_server

    state = stop_server(home())
    if state is None:
        out.print("no local server runs")
    else:
        out.print(f"stopped the local server {state['url']} (pid {state['pid']})")
