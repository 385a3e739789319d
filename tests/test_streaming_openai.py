"""The streaming flow keeps the `openai` engine's slots busy while shards wait on slow
replies: the engine counts the requests waiting for a slot, and the flow starts the next
shard whenever fewer than `concurrency` wait. A real HTTP server on 127.0.0.1
(tests/teacher_server.py), real Prefect flows and DuckDB files."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.openai import OpenAIEngine
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer


def _ask(i: int) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": f"What is {i} + 1?"},), max_tokens=50)


def test_backlog_counts_the_requests_waiting_for_a_slot():
    with TeacherServer(delay_s=0.3) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, concurrency=2)
        assert engine.backlog() == 0
        call = threading.Thread(target=engine.generate, args=([_ask(i) for i in range(6)],))
        call.start()
        seen = []
        while call.is_alive():
            seen.append(engine.backlog())
            time.sleep(0.02)
        call.join()
    while seen and seen[0] == 0:  # polled before the call counted its requests
        seen.pop(0)
    assert 4 <= max(seen) <= 6  # 6 asked, 2 soon in flight (counted before the loop sees them)
    assert seen == sorted(seen, reverse=True) and seen[-1] <= 2  # slots take them, in waves
    assert engine.backlog() == 0


def test_a_failed_call_leaves_nothing_counted_as_waiting():
    with TeacherServer() as srv:
        # A wrong path: 404, a refusal of the whole client, raised while 4 still wait.
        engine = OpenAIEngine("teacher", base_url=srv.base_url + "/nowhere", concurrency=1)
        with pytest.raises(UserError, match="refused model"):
            engine.generate([_ask(i) for i in range(5)])
        time.sleep(0.2)  # the abandoned requests run on (and fail) on the engine's loop
        assert engine.backlog() == 0


def test_shards_stuck_on_slow_replies_do_not_idle_the_free_slots(
    prefect_api, warehouse_path, tmp_path
):
    # Shards of 8 at concurrency 4; one reply in each of the first 3 shards takes 6 s. With a
    # fixed count of shards ahead (3 for this recipe before the backlog rule), those 3
    # shards block the start of any other and the 4th slot idles; now it serves every other
    # problem while the 3 slow replies are still out.
    problems = [
        {
            "question": ("[slow] " if i in (0, 8, 16) else "") + f"What is {i} + 1?",
            "answer": str(i + 1),
        }
        for i in range(48)
    ]
    path = write_jsonl(tmp_path / "problems.jsonl", problems)
    recipe = {
        "name": "stuck-shards",
        "problems": {"source": str(path)},
        "engine": {"kind": "openai", "model": "teacher", "base_url": "", "concurrency": 4},
        "generate": {"method": "distill", "samples": 1, "max_tokens": 100, "shard_size": 8},
        "filters": ["format", "answer"],
        "runner": {"commit_seconds": 0},
    }
    with TeacherServer(slow_s=6.0) as srv:
        recipe["engine"]["base_url"] = srv.base_url
        summary = run_recipe(parse_recipe(recipe), str(warehouse_path))
        answered = [e["question"] for e in srv.state.log]
    assert summary["engine_completions"] == 48 and summary["kept"] == 48
    assert len(answered) == 48
    assert all(q.startswith("[slow]") for q in answered[-3:]), answered
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.count("progress") == 48 and wh.count("traces") == 48
