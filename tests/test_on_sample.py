"""`Engine.generate(requests, on_sample)`: each completion is handed over as soon as it is
ready, once, with its (request, sample) indices, and at the latest before `generate` returns;
a callback that raises does not stop the other requests. The `openai` engine against a real
HTTP server on 127.0.0.1 (tests/teacher_server.py); the sim and predictions engines as they
are; the vllm engine in tests/test_vllm_engine.py."""

from __future__ import annotations

import json
import threading
import time

import pytest
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.openai import OpenAIEngine
from reasonfactory.generators.engines.predictions import PredictionsEngine
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.prompts import build_messages
from teacher_server import TeacherServer


def _ask(question: str, n: int = 1) -> GenRequest:
    return GenRequest(messages=({"role": "user", "content": question},), n=n, max_tokens=50)


def _keys(requests: list[GenRequest]) -> set[tuple[int, int]]:
    return {(i, k) for i, r in enumerate(requests) for k in range(r.n)}


class Recorder:
    """An `on_sample` that records what it got, when, on which thread."""

    def __init__(self, waited_for: set[tuple[int, int]] = frozenset()):
        self.seen: dict[tuple[int, int], tuple] = {}
        self.calls = 0
        self.waited_for = set(waited_for)
        self.arrived = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, i, k, completion):
        with self.lock:
            self.calls += 1
            self.seen[(i, k)] = (completion, time.monotonic(), threading.current_thread().name)
            if self.waited_for <= set(self.seen):
                self.arrived.set()


def test_openai_hands_over_each_reply_while_a_slow_one_is_still_in_flight():
    slow_s = 8.0
    requests = [
        _ask("[slow] What is 1 + 1?"),
        *[_ask(f"What is {i} + 1?", n=2) for i in range(2, 6)],
        _ask("[400] What is 9 + 1?"),  # refused for its content: an error completion, at once
    ]
    fast = _keys(requests) - {(0, 0)}
    record = Recorder(waited_for=fast)
    result: dict = {}
    with TeacherServer(slow_s=slow_s) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, concurrency=16)
        call = threading.Thread(
            target=lambda: result.update(out=engine.generate(requests, on_sample=record))
        )
        started = time.monotonic()
        call.start()
        # Every fast reply reaches the callback while the slow one is still out (it is
        # answered `slow_s` after the start): the deadline fails a hang in seconds.
        assert record.arrived.wait(slow_s - 2), f"by then only {sorted(record.seen)}"
        assert (0, 0) not in record.seen and call.is_alive()
        call.join(timeout=60)
        assert not call.is_alive(), "generate did not return"
    out = result["out"]
    # And every completion, the slow one too, by the time generate returned: once each.
    assert set(record.seen) == _keys(requests) and record.calls == len(_keys(requests))
    for (i, k), (completion, _, thread) in record.seen.items():
        assert out[i][k] is completion
        assert thread == "openai-engine"  # the engine's event-loop thread
    assert record.seen[(0, 0)][1] - started >= slow_s - 0.5
    assert max(t for key, (_, t, _) in record.seen.items() if key in fast) < started + slow_s
    assert record.seen[(5, 0)][0].finish_reason == "error"
    assert "boxed{3}" in out[1][0].text and "boxed{3}" in out[1][1].text


def test_a_raising_callback_does_not_stop_the_other_requests_then_generate_raises_it():
    requests = [_ask(f"What is {i} + 1?", n=2) for i in range(4)]
    calls = []

    def on_sample(i, k, completion):
        calls.append((i, k))
        if i == 1:
            raise RuntimeError(f"store failed for {i}/{k}")

    with TeacherServer(delay_s=0.05) as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url, concurrency=2)
        with pytest.raises(RuntimeError, match=r"store failed for 1/"):
            engine.generate(requests, on_sample=on_sample)
        answered = len(srv.state.log)
    assert sorted(calls) == sorted(_keys(requests))  # every reply still reached it
    assert answered == 8
    # The same contract for the engines that finish a batch at once.
    sim_calls = []
    sim_requests = [GenRequest(messages=build_messages("Compute 2 + 3."), n=2, seed=1)] * 2

    def sim_sample(i, k, completion):
        sim_calls.append((i, k))
        if (i, k) == (0, 0):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        SimEngine().generate(sim_requests, on_sample=sim_sample)
    assert sim_calls == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_sim_and_metered_call_it_n_times_per_request_with_the_right_indices():
    requests = [
        GenRequest(messages=build_messages("Compute 2 + 3."), n=3, seed=1),
        GenRequest(messages=build_messages("Compute 7 * 6 - 5."), n=1, seed=2, first_sample=4),
        GenRequest(messages=build_messages("Compute 9 - 4."), n=2, seed=3),
    ]
    for engine in (SimEngine(error_rate=0.3), MeteredEngine(SimEngine(error_rate=0.3))):
        record = Recorder()
        out = engine.generate(requests, on_sample=record)
        assert record.calls == 6 and set(record.seen) == _keys(requests)
        assert all(out[i][k] is c for (i, k), (c, _, _) in record.seen.items())
        assert out == SimEngine(error_rate=0.3).generate(requests)  # no change to the text


def test_predictions_call_it_n_times_per_request_with_the_right_indices(tmp_path):
    path = tmp_path / "preds.jsonl"
    lines = [{"question": "Compute 2 + 3.", "response": f"\\boxed{{{v}}}"} for v in (5, 6, 5)]
    lines += [{"question": "Compute 9 - 4.", "response": "\\boxed{5}"}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    engine = PredictionsEngine(str(path), "m", ())
    requests = [
        GenRequest(messages=build_messages("Compute 2 + 3."), n=2, first_sample=1),
        GenRequest(messages=build_messages("Compute 9 - 4."), n=1),
    ]
    record = Recorder()
    out = engine.generate(requests, on_sample=record)
    assert set(record.seen) == {(0, 0), (0, 1), (1, 0)} and record.calls == 3
    assert [record.seen[(0, k)][0].text for k in (0, 1)] == ["\\boxed{6}", "\\boxed{5}"]
    assert all(out[i][k] is c for (i, k), (c, _, _) in record.seen.items())


def test_without_a_callback_nothing_changes():
    requests = [GenRequest(messages=build_messages("Compute 2 + 3."), n=2, seed=1)]
    assert SimEngine().generate(requests) == SimEngine().generate(requests, on_sample=None)
