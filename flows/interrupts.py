"""Ctrl-C during a run, raised where the run can take it: between shards, not inside a lock.

Python's default SIGINT handler raises `KeyboardInterrupt` at whatever bytecode the main
thread runs. While the flow waits on its shards' futures that can be inside
`concurrent.futures.wait`, between two of the lock acquisitions it makes on the futures it
waits for; the interrupt then leaves a future's lock held for good, the worker thread that
finishes that future blocks in `set_result`, and Prefect's task runner joins that worker
forever on the way out. Seen as a CLI that never exits after Ctrl-C, about one time in ten
on a busy machine (a py-spy dump showed the pool's workers in `Future.set_result` and the
main thread in `ThreadPoolExecutor.shutdown`).

`SafePoints` replaces the handler for the length of a `with` block: Ctrl-C is noted, and
`check()` raises it at a point the caller chose. A second Ctrl-C raises at once, so a run
stuck outside a safe point can still be stopped. Only the main thread can set a signal
handler; anywhere else (a worker, a notebook thread) the block changes nothing.
"""

from __future__ import annotations

import signal
import threading

# Set once Ctrl-C was pressed in a run of this process: the CLI reports it in one line, so
# Prefect's records of the shards it stopped are not shown (flows/runtime.py).
PRESSED = threading.Event()


class SafePoints:
    """Defers Ctrl-C to the next `check()` inside the block.

    >>> with SafePoints() as points:
    ...     points.check()  # nothing pressed: returns
    >>> points.pressed
    0
    """

    def __init__(self) -> None:
        self.pressed = 0
        self._raised = False
        self._previous = None
        self._installed = False

    def _note(self, signum, frame) -> None:
        self.pressed += 1
        PRESSED.set()
        if self.pressed > 1:  # pressed again: the user means it, stop wherever we are
            self._raised = True
            raise KeyboardInterrupt

    def install(self) -> SafePoints:
        """Note Ctrl-C from now on (in the main thread), until `restore()`."""
        if threading.current_thread() is threading.main_thread():
            PRESSED.clear()  # a new run in a long-lived process (a notebook) shows its logs
            self._previous = signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def restore(self) -> None:
        """Put the previous Ctrl-C handler back; a press not yet checked is dropped."""
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def __enter__(self) -> SafePoints:
        return self.install()

    def check(self) -> None:
        """Raise the Ctrl-C noted since the block began, if any."""
        if self.pressed and not self._raised:
            self._raised = True
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        self.restore()
        if self.pressed and not self._raised and exc[0] is None:
            raise KeyboardInterrupt  # pressed after the last check: still an interrupt
