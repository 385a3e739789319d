"""Ctrl-C during a run is raised where the run chooses (flows/interrupts.py): real SIGINTs
sent to a real subprocess, and the streaming scheduler looking for one while it waits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest
from reasonfactory.flows.runners import WAIT_S, stream

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from reasonfactory.flows.interrupts import SafePoints
    # As a terminal leaves it: a job a shell started in the background inherits SIGINT
    # ignored, and the check below is that the block puts back what was there.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with SafePoints() as points:
        os.kill(os.getpid(), signal.SIGINT)  # noted, not raised
        print("after first", points.pressed, flush=True)
        try:
            points.check()
        except KeyboardInterrupt:
            print("raised at check", flush=True)
    print("handler back", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    with SafePoints() as points:
        os.kill(os.getpid(), signal.SIGINT)
        try:
            os.kill(os.getpid(), signal.SIGINT)  # a second press stops wherever it lands
            print("not raised")
        except KeyboardInterrupt:
            print("second press raised", points.pressed)
    """
)


def test_a_press_waits_for_check_and_a_second_press_raises_at_once():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:4] == [
        "after first 1",
        "raised at check",
        "handler back True",
        "second press raised 2",
    ]


def test_a_press_after_the_last_check_still_interrupts_the_block():
    child = textwrap.dedent(
        """
        import os, signal
        from reasonfactory.flows.interrupts import SafePoints
        try:
            with SafePoints():
                os.kill(os.getpid(), signal.SIGINT)
            print("swallowed")
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert out.stdout.strip() == "interrupted", out.stderr


class _SlowRunner:
    """A `ShardRunner` whose shards take 5 s (a hand-written fake: the scheduler's own logic
    is under test, not an engine's)."""

    def __init__(self, pool):
        self.pool, self.started = pool, 0

    def submit(self, shard):
        self.started += 1
        return self.pool.submit(time.sleep, 5)

    def generating(self) -> int:
        return self.started

    def wants_more(self) -> bool:
        return False


def test_the_scheduler_looks_for_ctrl_c_while_a_shard_is_still_generating():
    shards = [pl.DataFrame({"problem_id": [str(i)]}) for i in range(3)]
    with ThreadPoolExecutor(2) as pool:
        calls = []

        def check():
            calls.append(time.monotonic())
            if len(calls) == 3:
                raise KeyboardInterrupt

        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            next(stream(shards, _SlowRunner(pool), lookahead=1, check=check))
        assert time.monotonic() - t0 < 5 * WAIT_S + 2  # not the 5 s the shard takes
        assert len(calls) == 3
