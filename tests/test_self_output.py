"""self_output: one batched engine call, votes, scores, majority standing in for gold."""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.base import Completion, GenRequest, SampleFeed
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.problems.sources import load_problems

CTX = RunContext("r", "fp", "fake")


class ScriptedEngine:
    """Answers each request with the given boxed answers, in order (a hand-written fake)."""

    model = "fake"

    def __init__(self, answers: list[list[str]]):
        self.answers = answers
        self.calls: list[list[GenRequest]] = []

    def generate(self, requests, on_sample=None):
        self.calls.append(requests)
        out = [
            [Completion(f"<think>\nwork\n</think>\n\n\\boxed{{{a}}}", n_tokens=5) for a in answers]
            for answers in self.answers
        ]
        SampleFeed(on_sample).send_all(out)
        return out


def _problems(golds):
    return pl.DataFrame(
        {
            "problem_id": [f"p{i}" for i in range(len(golds))],
            "question": [f"question {i}" for i in range(len(golds))],
            "gold": golds,
        }
    )


def test_all_problems_go_in_one_engine_call():
    problems = load_problems("builtin:arithmetic", limit=40)
    engine = MeteredEngine(SimEngine(error_rate=0.2))
    out = self_output(problems, engine, SelfOutputConfig(samples=6), CTX)
    assert engine.meter.calls == 1 and engine.meter.requests == 40
    assert out.traces.height == 240
    # the generation budget: every generated token, as the traces count them
    assert engine.meter.tokens == out.traces["n_tokens"].sum() > 240
    assert out.traces["trace_id"].n_unique() == 240


def test_score_is_vote_share_and_gold_used():
    engine = ScriptedEngine([["4", "4", "4", "5"]])
    out = self_output(_problems(["5"]), engine, SelfOutputConfig(samples=4), CTX).traces
    assert out["score"].to_list() == [0.75, 0.75, 0.75, 0.25]
    assert out["gold"].to_list() == ["5"] * 4
    assert set(out["gold_source"]) == {"problem"}
    assert engine.calls[0][0].n == 4


def test_majority_stands_in_for_missing_gold():
    engine = ScriptedEngine([["7", "7", "\\dfrac{7}{1}", "8"], ["1", "2", "3", "4"]])
    out = self_output(_problems([None, None]), engine, SelfOutputConfig(samples=4), CTX).traces
    first, second = out.head(4), out.tail(4)
    assert first["gold"].to_list() == ["7"] * 4
    meta = json.loads(first["meta"][0])
    assert meta["gold_source"] == "majority" and meta["majority_share"] == 0.5
    # 1 of 4 agree: below min_agreement 0.5, so no answer stands in.
    assert second["gold"].to_list() == [None] * 4
    assert set(second["gold_source"]) == {"none"}


@pytest.mark.parametrize("min_agreement,expected", [(0.5, "7"), (0.6, None)])
def test_min_agreement(min_agreement, expected):
    engine = ScriptedEngine([["7", "7", "8", "9"]])
    cfg = SelfOutputConfig(samples=4, min_agreement=min_agreement)
    out = self_output(_problems([None]), engine, cfg, CTX).traces
    assert out["gold"][0] == expected
