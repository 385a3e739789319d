"""Progress on the console: what a long command has done so far, its rate and its ETA.

The flows report each committed unit of work (a shard of `generate`, a batch of `refilter`)
to `reporter()`; the CLI installs a Rich bar with `showing_progress(...)` around the flow.
Outside the CLI (tests, notebooks) `reporter()` is a no-op, so the flows never depend on a
terminal. The bar goes to stderr and is transient: the command's summary block stays.

>>> r = reporter(); r.start(10, "generate"); r.advance(problems=4, traces=32, kept=20)
>>> r.totals()
{'problems': 4, 'traces': 32, 'kept': 20, 'tokens': 0}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Counts work done; the base class shows nothing (what flows get outside the CLI)."""

    def __init__(self) -> None:
        self._totals = {"problems": 0, "traces": 0, "kept": 0, "tokens": 0}
        self.started = time.perf_counter()

    def start(self, total: int | None, label: str) -> None:
        """A new unit of work of `total` problems (None: unknown) begins."""
        self.started = time.perf_counter()

    def advance(self, problems: int = 0, traces: int = 0, kept: int = 0, tokens: int = 0) -> None:
        """One committed shard or batch."""
        for key, n in (("problems", problems), ("traces", traces), ("kept", kept)):
            self._totals[key] += int(n)
        self._totals["tokens"] += int(tokens or 0)

    def totals(self) -> dict[str, int]:
        return dict(self._totals)


class RichReporter(Reporter):
    """Problems done / total with ETA, traces/s, kept share and engine tokens/s."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = None

    def start(self, total: int | None, label: str) -> None:
        super().start(total, label)
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, rates="")

    def advance(self, problems: int = 0, traces: int = 0, kept: int = 0, tokens: int = 0) -> None:
        super().advance(problems, traces, kept, tokens)
        if self.task is None:
            return
        t = self._totals
        wall = max(time.perf_counter() - self.started, 1e-9)
        rates = f"{t['traces'] / wall:.0f} traces/s"
        if t["traces"]:
            rates += f", kept {t['kept'] / t['traces']:.0%}"
        if t["tokens"]:
            rates += f", {t['tokens'] / wall:.0f} tok/s"
        self.bar.update(self.task, advance=problems, rates=rates)

    def stop(self) -> None:
        self.bar.stop()


_current: Reporter | None = None


def reporter() -> Reporter:
    """The active reporter (a fresh silent one when no command installed a bar)."""
    return _current or Reporter()


@contextmanager
def installed(rep: Reporter) -> Iterator[Reporter]:
    """Make `rep` the reporter the flows run inside report to."""
    global _current
    previous, _current = _current, rep
    try:
        yield rep
    finally:
        _current = previous


@contextmanager
def showing_progress(console: Console) -> Iterator[Reporter]:
    """Install a transient Rich bar for the flows run inside."""
    bar = RichReporter(console)
    try:
        with installed(bar):
            yield bar
    finally:
        bar.stop()


@contextmanager
def spinner(console: Console, label: str) -> Iterator[None]:
    """A transient spinner with the elapsed time, for one-step commands (import, export)."""
    with Progress(
        SpinnerColumn(), TextColumn(label), TimeElapsedColumn(), console=console, transient=True
    ):
        yield
