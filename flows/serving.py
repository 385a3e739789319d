"""Serve a flow as a Prefect deployment until SIGINT or SIGTERM (`reasonfactory schedule`).

Prefect 3.8.8's `Flow.serve` stops badly on a signal. Its SIGTERM handler calls the sync
`Runner.stop()` from inside the running event loop, where Prefect's `async_dispatch` hands back
the `astop()` coroutine instead of running it: the coroutine is dropped ("coroutine
'Runner.astop' was never awaited") and `sys.exit(0)` unwinds the loop from the handler. SIGINT
is left to Python, which keeps it ignored when a shell started the process in the background
(`cmd &` sets SIG_IGN), so `kill -INT` did nothing.

Here both signals ask the runner to stop the way Prefect means it to, `await runner.astop()`
inside its loop: runs in progress are cancelled, the deployment is paused (the runner's
`pause_on_shutdown`), and `serve_until_stopped` returns the signal's name. Not here: the
deployment's parameters (flows/cli/run.py) and the flow itself (flows/generate.py).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopper:
    """Turns the first SIGINT/SIGTERM into `runner.astop()` in the runner's loop; a second
    one raises `KeyboardInterrupt` at once, so a stop that hangs can still be cut short."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: Any = None
        self.main: asyncio.Task | None = None
        self.stopping: asyncio.Task | None = None

    def request(self, signum: int, frame: Any = None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        if self.loop is not None:
            # As asyncio.Runner's own SIGINT handler does: the handler only wakes the loop;
            # the stop runs as loop code, not inside whatever bytecode the signal landed on.
            self.loop.call_soon_threadsafe(self._stop)

    def _stop(self) -> None:
        if self.runner.started:
            self.stopping = self.loop.create_task(self.runner.astop())
        elif self.main is not None and not self.main.done():
            self.loop.call_later(0.1, self._stop)  # still connecting: stop once it serves

    async def serve(self, runner: Any) -> None:
        self.loop, self.runner = asyncio.get_running_loop(), runner
        self.main = asyncio.current_task()
        if self.signal is not None:  # came while the deployment was being registered
            self.loop.call_soon(self._stop)  # start anyway, so stopping pauses it as usual
        await runner.start()
        if self.stopping is not None:
            await self.stopping


def serve_until_stopped(
    flow: Any, *, name: str, cron: str, parameters: dict, ready=None
) -> str | None:
    """Create deployment `name` of `flow` on `cron` and run its scheduled runs here until
    SIGINT or SIGTERM; returns that signal's name ("SIGINT", "SIGTERM"). `ready()` is called
    once the deployment exists, before the runner polls for runs. Main thread only.
    """
    from prefect.runner import Runner

    stopper = _Stopper()

    class StoppableRunner(Runner):
        # Runner.start installs this as the SIGTERM handler; Prefect's own is the one above.
        def handle_sigterm(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
            stopper.request(signum, frame)

    # Set even where a shell left SIGINT ignored: kill -INT must stop a background scheduler.
    previous = {sig: signal.signal(sig, stopper.request) for sig in STOP_SIGNALS}
    try:
        runner = StoppableRunner(name=name, pause_on_shutdown=True)
        runner.add_flow(flow, name=name, cron=cron, parameters=parameters)
        if ready is not None:
            ready()
        asyncio.run(stopper.serve(runner))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopper.signal
