"""What a run stores while one slow reply holds a shard back (flows/committer.py): every reply
the teacher sent is in the warehouse seconds later, even after `kill -9`; the shards that
finished behind the slow one are stored on Ctrl-C; the resumed run asks only for what no
reply answered. A real HTTP teacher, real CLI processes, signals and DuckDB files."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import cli_until
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

N = 40  # problems; shards of 4, the first holds the one slow question


def _setup(tmp_path, srv) -> None:
    slow = {1}  # in the first shard
    questions = [
        {"question": f"{'[slow] ' * (i in slow)}What is {i} + {i + 2}?", "answer": str(2 * i + 2)}
        for i in range(N)
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (tmp_path / "r.yaml").write_text(
        "name: one-slow-reply\nproblems: {source: p.jsonl}\n"
        f"engine: {{kind: openai, model: teacher, base_url: '{srv.base_url}', "
        "api_key_env: RF_TEST_KEY, timeout: 900, concurrency: 8}\n"
        "generate: {method: distill, samples: 1, shard_size: 4}\n"
    )


def _sent(srv) -> int:
    return sum(1 for e in srv.state.log if e["status"] == 200)


def _wait_for_replies(srv, n: int, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while _sent(srv) < n:
        assert time.monotonic() < deadline, f"the teacher sent {_sent(srv)} of {n} replies"
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_loses_no_reply_the_teacher_sent(prefect_api, tmp_path):
    with TeacherServer(slow_s=600.0) as srv:
        _setup(tmp_path, srv)
        proc, _ = cli_until(tmp_path, "still to generate", api=prefect_api, RF_TEST_KEY="k")
        _wait_for_replies(srv, N - 1)  # all but the slow one, which the server still holds
        time.sleep(7)  # seconds (journal_seconds: 5), not a shard or a commit_seconds (30 s)
        proc.kill()
        proc.wait(timeout=10)
        sent = _sent(srv)
        with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
            stored = wh.count("completions")
            traces = wh.count("traces")
        # What a paid teacher sent is in the warehouse, though no shard was committed.
        assert (sent, stored, traces) == (N - 1, N - 1, 0)

        # The resumed run asks the teacher again only for the slow question.
        srv.state.log.clear()
        proc = subprocess.run(
            proc.args, cwd=tmp_path, env=_env(prefect_api), capture_output=True, text=True,
            timeout=240,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        asked = [e["question"] for e in srv.state.log]
    assert len(asked) == 1 and asked[0].startswith("[slow]"), asked
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        assert wh.count("traces") == wh.count("progress") == N


@pytest.mark.slow
def test_ctrl_c_stores_the_shards_that_finished_behind_a_slow_one(prefect_api, tmp_path):
    with TeacherServer(slow_s=600.0) as srv:
        _setup(tmp_path, srv)
        proc, _ = cli_until(tmp_path, "still to generate", api=prefect_api, RF_TEST_KEY="k")
        _wait_for_replies(srv, N - 1)
        time.sleep(1)  # the finished shards are filtered
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("Ctrl-C did not stop the run") from None
    assert proc.returncode == 130, rest
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        done = wh.count("progress")
        stored = wh.count("completions")
    # Every shard but the one waiting on the slow reply: stored, not dropped at the interrupt.
    assert (done, stored) == (N - 4, N - 1), rest
    assert f"has {N - 4} problems" in rest.strip().splitlines()[-1], rest


def _env(api: str) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "PREFECT_API_URL": api, "RF_TEST_KEY": "k", "COLUMNS": "300"}
