"""The same run started twice at once (overlapping cron runs, a command run twice): the second
waits for the first, says who it waits for, then finds the work stored and does none of it.
Real CLI processes and one DuckDB file; the lock is the kernel's, so a killed holder frees it."""

from __future__ import annotations

import fcntl
import os
import subprocess

import pytest
from conftest import cli_until
from reasonfactory.warehouse.errors import WarehouseError
from reasonfactory.warehouse.locking import run_lock
from reasonfactory.warehouse.store import Warehouse

RECIPE = """name: twice
problems: {source: builtin:arithmetic, limit: 40}
engine: {kind: sim, delay_s: 1.0}
generate: {samples: 2, shard_size: 2}
"""


@pytest.mark.slow
def test_the_same_run_twice_at_once_does_the_work_once(prefect_api, tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    first, _ = cli_until(tmp_path, "still to generate", api=prefect_api)
    second, lines = cli_until(tmp_path, "is being run by PID", api=prefect_api)
    try:
        out1, _ = first.communicate(timeout=240)
        out2, _ = second.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        first.kill(), second.kill()
        raise
    out2 = "".join(lines) + out2
    assert first.returncode == 0 and second.returncode == 0, out1 + out2
    assert "(40 generated this time" in out1
    assert "(0 generated this time" in out2 and "engine 0.0 s in 0 calls" in out2, out2
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        assert wh.count("traces") == wh.count("completions") == 80
        assert wh.count("progress") == 40


def test_a_held_run_waits_and_gives_up_with_who_holds_it(tmp_path):
    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import fcntl, os, sys, time\n"
            f"os.makedirs('{path}.runs', exist_ok=True)\n"
            f"fd = os.open('{path}.runs/r_1.lock', os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'PID 1 (a cron run)')\n"
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        held = r"run r_1 is being run by PID 1 \(a cron run\)"
        with (
            pytest.raises(WarehouseError, match=held),
            run_lock(path, "r_1", timeout=1.5, report=said.append),
        ):
            pass
        assert said and "waiting" in said[0]
        with run_lock(path, "r_2", timeout=1):  # another run of the warehouse is not held
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(path, "r_1", timeout=5):  # a killed holder freed it
        fd = os.open(f"{path}.runs/r_1.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
