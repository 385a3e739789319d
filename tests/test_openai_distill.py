"""The `openai` engine and `distill` against a real HTTP server on 127.0.0.1
(tests/teacher_server.py) that answers like an R1 teacher and injects 429s, 500s, slow
replies and truncated answers."""

from __future__ import annotations

import json
import time

import pytest
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.openai import OpenAIEngine
from reasonfactory.generators.prompts import parse_completion
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

KEY = "sk-test-secret-7f3a"


def _ask(question: str, **kw) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": question},), max_tokens=200, **kw)


@pytest.mark.parametrize("split", [False, True])
def test_thinking_is_read_inline_or_from_reasoning_content(split):
    with TeacherServer(split=split) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, api_key_env="RF_NO_SUCH_KEY")
        [[c]] = engine.generate([_ask("What is 17 + 25?", logprobs=True)])
    assert (c.reasoning is not None) == split
    p = parse_completion(c.text, c.reasoning)
    assert p.thought == "We need 17 + 25.\n\n17 + 25 = 42." and p.predicted == "42"
    assert p.response == "The answer is \\boxed{42}."
    assert c.finish_reason == "stop" and c.n_tokens == c.meta["tokens_out"] > 0
    assert c.meta["tokens_in"] == 5 and c.meta["reasoning_tokens"] == 10
    assert c.cumulative_logprob == pytest.approx(-0.1 * c.n_tokens)
    assert srv.state.log[0]["authorization"] is None  # no key needed locally


def test_429_500_and_timeouts_are_retried_honouring_retry_after():
    with TeacherServer(slow_s=3.0) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, timeout=1.0, max_retries=4)
        t0 = time.monotonic()
        out = engine.generate(
            [
                _ask("[429] What is 3 * 4?"),
                _ask("[500] What is 10 - 7?"),
                _ask("[slow] What is 6 + 6?"),
            ]
        )
        elapsed = time.monotonic() - t0
    answers = [parse_completion(cs[0].text).predicted for cs in out]
    assert answers == ["12", "3", "12"]
    assert [cs[0].meta["retries"] for cs in out] == [1, 2, 1]
    statuses = [(e["question"][:5], e["status"]) for e in srv.state.log]
    assert statuses.count(("[429]", 429)) == 1 and statuses.count(("[500]", 500)) == 2
    assert srv.state.attempts["[slow] What is 6 + 6?"] == 2  # the slow one timed out once
    assert elapsed >= 1.0  # waited out Retry-After: 1


def test_a_request_failing_after_its_retries_is_an_error_sample_the_rest_is_kept():
    with TeacherServer() as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, max_retries=1)
        ok, down = engine.generate([_ask("What is 1 + 1?"), _ask("[down] What is 2 + 2?")])
        assert ok[0].finish_reason == "stop" and down[0].finish_reason == "error"
        assert "HTTP 500" in down[0].meta["error"]
        with pytest.raises(UserError, match="all 1 requests .* failed"):
            engine.generate([_ask("[down] What is 2 + 2?")])


def test_a_missing_key_for_a_hosted_api_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UserError, match=r"no API key in \$OPENAI_API_KEY"):
        OpenAIEngine("deepseek-reasoner")


def test_concurrency_is_bounded():
    with TeacherServer(delay_s=0.2) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, concurrency=4)
        out = engine.generate([_ask(f"What is {i} + 1?", n=2) for i in range(4)])
    assert [len(cs) for cs in out] == [2, 2, 2, 2]
    # 8 requests of 0.2 s, at most 4 at a time, counted at the server (not by wall time,
    # which a loaded machine stretches): several at once, never more than the bound
    assert 2 <= srv.state.max_in_flight <= 4


PROBLEMS = [
    {"question": "What is 17 + 25?", "answer": "42"},
    {"question": "[429] What is 3 * 4?", "answer": "12"},
    {"question": "[500] What is 10 - 7?", "answer": "3"},
    {"question": "[slow] What is 6 + 6?", "answer": "12"},
    {"question": "[long] What is 2 + 2?", "answer": "4"},
    {"question": "[down] What is 9 * 9?", "answer": "81"},
    {"question": "[wrong] What is 5 + 5?", "answer": "10"},
]


def _recipe(path, base_url, max_tokens):
    return parse_recipe(
        {
            "name": "distill-test",
            "problems": {"source": str(path)},
            "engine": {
                "kind": "openai",
                "model": "teacher",
                "base_url": base_url,
                "api_key_env": "RF_TEST_KEY",
                "timeout": 1.0,
                "max_retries": 3,
            },
            "generate": {"method": "distill", "samples": 2, "max_tokens": max_tokens},
            "filters": ["format", "answer"],
        }
    )


@pytest.mark.slow
def test_distill_stores_each_problem_once_retries_failures_and_redoes_truncations(
    prefect_api, warehouse_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("RF_TEST_KEY", KEY)
    path = write_jsonl(tmp_path / "problems.jsonl", PROBLEMS)
    with TeacherServer(split=True, slow_s=3.0) as srv:
        first = run_recipe(_recipe(path, srv.base_url, 60), str(warehouse_path))
        with Warehouse(warehouse_path) as wh:
            traces = wh.sql(
                "SELECT t.*, p.question FROM traces t JOIN problems p USING (problem_id)"
            )
        assert traces.height == 14 and traces["trace_id"].n_unique() == 14
        assert traces.group_by("problem_id").len()["len"].to_list() == [2] * 7
        why = {q[:6]: r for q, r in zip(traces["question"], traces["reject_reason"], strict=True)}
        assert why["[long]"] == "truncated" and why["[down]"] == "engine_error"
        assert why["[wrong"] == "wrong_answer"
        assert {why[k] for k in ("What i", "[429] ", "[500] ", "[slow]")} == {None}
        kept = traces.filter(status="kept")
        assert kept.height == 8 and (kept["thought"].str.contains("= ")).all()
        assert kept["response"].str.starts_with("The answer is \\boxed{").all()
        metas = [json.loads(m) for m in kept["meta"]]
        assert all(m["tokens_in"] > 0 and m["tokens_out"] > 0 for m in metas)
        assert all(m["reasoning_source"] == "split" for m in metas)
        assert sum(m["retries"] for m in metas) >= 4  # 429 once, 500 twice, slow once
        assert first["rejected"] == {"truncated": 2, "engine_error": 2, "wrong_answer": 2}
        # The key went out in the header and nowhere into the warehouse.
        assert {e["authorization"] for e in srv.state.log} == {f"Bearer {KEY}"}
        with Warehouse(warehouse_path, read_only=True) as wh:
            for table in ("runs", "traces", "completions", "progress", "problems"):
                hits = wh.sql(
                    f"SELECT count(*) AS n FROM {table} t WHERE t::VARCHAR LIKE '%{KEY}%'"
                )
                assert hits["n"][0] == 0, table

        # The server is back and the budget raised: only the truncated and failed problems
        # are asked again, and their rows replace the old ones.
        srv.state.down = False
        asked_before = len(srv.state.log)
        second = run_recipe(_recipe(path, srv.base_url, 2000), str(warehouse_path))
        asked = [e["question"][:6] for e in srv.state.log[asked_before:]]
        assert sorted(asked) == ["[down]", "[down]", "[long]", "[long]"]
        assert second["run_id"] == first["run_id"] and second["problems_generated"] == 2
        with Warehouse(warehouse_path, read_only=True) as wh:
            after = wh.sql("SELECT status, reject_reason, meta FROM traces")
            runs = wh.count("runs")
        assert after.height == 14 and runs == 1
        assert after.filter(status="kept").height == 12
        assert set(after["reject_reason"].drop_nulls()) == {"wrong_answer"}

        again = run_recipe(_recipe(path, srv.base_url, 2000), str(warehouse_path))
        assert again["problems_generated"] == 0 and len(srv.state.log) == asked_before + 4


def test_malformed_200_replies_are_retried_then_that_request_s_error():
    with TeacherServer() as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, max_retries=2)
        ok, html, empty, flaky = engine.generate(
            [
                _ask("What is 1 + 1?"),
                _ask("[html] What is 2 + 2?"),
                _ask("[empty] What is 3 + 3?"),
                _ask("[flaky] What is 4 + 4?"),
            ]
        )
    assert parse_completion(ok[0].text).predicted == "2"
    assert html[0].finish_reason == "error" and "not JSON (text/html)" in html[0].meta["error"]
    assert empty[0].finish_reason == "error" and "malformed reply" in empty[0].meta["error"]
    assert srv.state.attempts["[html] What is 2 + 2?"] == 3  # retried like a 5xx
    assert flaky[0].meta["retries"] == 1 and parse_completion(flaky[0].text).predicted == "8"


def test_a_400_is_that_request_s_error_with_the_server_s_message_not_the_run_s():
    with TeacherServer() as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, max_retries=3)
        ok, refused = engine.generate([_ask("What is 1 + 1?"), _ask("[400] What is 2 + 2?")])
        assert ok[0].finish_reason == "stop" and refused[0].finish_reason == "error"
        assert "maximum context length is 512" in refused[0].meta["error"]
        assert srv.state.attempts["[400] What is 2 + 2?"] == 1  # a 400 is not retried
        # Even when every request of a batch is refused for its content, nothing is raised.
        [[alone]] = engine.generate([_ask("[400] What is 5 + 5?")])
    assert alone.meta["refused"] == 400


@pytest.mark.slow
def test_distill_commits_good_replies_beside_malformed_and_refused_ones(
    prefect_api, warehouse_path, tmp_path
):
    problems = [
        {"question": "What is 17 + 25?", "answer": "42"},
        {"question": "[html] What is 3 * 4?", "answer": "12"},
        {"question": "[empty] What is 10 - 7?", "answer": "3"},
        {"question": "[400] What is 6 + 6?", "answer": "12"},
        {"question": "[flaky] What is 2 + 2?", "answer": "4"},
    ]
    path = write_jsonl(tmp_path / "problems.jsonl", problems)
    with TeacherServer() as srv:
        recipe = _recipe(path, srv.base_url, 200)
        summary = run_recipe(recipe, str(warehouse_path))
    assert summary["kept"] == 4 and summary["rejected"] == {"engine_error": 6}
    with Warehouse(warehouse_path, read_only=True) as wh:
        rows = wh.sql(
            "SELECT p.question, t.status, t.reject_reason, t.meta FROM traces t "
            "JOIN problems p USING (problem_id) ORDER BY p.question"
        )
        stored = wh.count("completions")
    errors = {
        q[:7]: json.loads(m)["error"]
        for q, m, r in zip(rows["question"], rows["meta"], rows["reject_reason"], strict=True)
        if r == "engine_error"
    }
    assert "maximum context length" in errors["[400] W"] and "not JSON" in errors["[html] "]
    assert "malformed reply" in errors["[empty]"]
    assert stored == 4  # every good completion was committed (failures are asked again)
