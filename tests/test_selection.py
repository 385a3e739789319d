"""Selection among a problem's samples: majority, confidence, best_of_n (rules, endpoint)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.openai import OpenAIEngine
from reasonfactory.generators.methods.distill import DistillConfig, distill
from reasonfactory.generators.methods.selection import Sample, SelectionConfig, choose
from reasonfactory.generators.prompts import parse_completion
from teacher_server import TeacherServer


def _sample(answer, logprob=None, *, closed=True, finish="stop", n_tokens=10):
    body = f"<think>\nwork\n</think>\n\nThe answer is \\boxed{{{answer}}}."
    text = body if closed else body.replace("</think>", "")
    return Sample(parse_completion(text), finish, n_tokens, logprob)


@pytest.mark.parametrize(
    "by, gold, expect_selected, expect_gold, expect_source",
    [
        # majority: 7 wins 2-1; ties inside the majority go to the more confident sample
        ("majority", None, 2, "7", "majority"),
        # confidence: the highest mean token logprob (sample 1, -0.1 per token)
        ("confidence", None, 1, "8", "confidence"),
        # best_of_n with rules against the gold 8: only sample 1 is right
        ("best_of_n", "8", 1, "8", "problem"),
        # best_of_n with rules and no gold: the majority answer is right; most confident of them
        ("best_of_n", None, 2, "7", "best_of_n"),
    ],
)
def test_choose(by, gold, expect_selected, expect_gold, expect_source):
    samples = [_sample("7", -5.0), _sample("8", -1.0), _sample("7", -2.0)]
    choice = choose(samples, gold, SelectionConfig(by=by), min_agreement=0.5)
    assert choice.selected == expect_selected
    assert (choice.gold, choice.gold_source) == (expect_gold, expect_source)
    assert sorted(r for r in choice.ranks if r is not None) == [0, 1, 2]


def test_rules_reward_rejects_malformed_and_truncated_samples():
    samples = [
        _sample("8", -1.0, closed=False),
        _sample("8", -1.0, finish="length"),
        _sample("8", -3.0),
    ]
    choice = choose(samples, "8", SelectionConfig(by="best_of_n"), 0.5)
    assert choice.values == [0.0, 0.0, 1.0] and choice.selected == 2


def test_failed_and_logprob_less_samples_are_never_picked():
    failed = Sample(parse_completion(""), "error", 0, None)
    choice = choose([failed, _sample("3")], None, SelectionConfig(by="confidence"), 0.5)
    assert choice.values == [None, None] and choice.selected is None
    assert (choice.gold, choice.gold_source) == (None, "none")


def _best_of_n_by_endpoint(questions: list[str]):
    """Distill traces of the teacher, 2 samples a problem, picked by its /classify scores."""
    problems = pl.DataFrame(
        {
            "problem_id": [f"p{i}" for i in range(len(questions))],
            "question": questions,
            "gold": [None] * len(questions),
        },
        schema={"problem_id": pl.String, "question": pl.String, "gold": pl.String},
    )
    with TeacherServer() as srv:
        engine = OpenAIEngine("teacher", base_url=srv.base_url)
        verifier = {"kind": "endpoint", "model": "rm", "base_url": srv.base_url}
        config = DistillConfig(samples=2, selection={"by": "best_of_n", "verifier": verifier})
        return distill(problems, engine, config, RunContext("r", "fp", "teacher")).traces


def test_best_of_n_with_a_scoring_endpoint():
    traces = _best_of_n_by_endpoint(["What is 2 + 3?", "[wrong] What is 5 + 5?"])
    sel = [json.loads(m)["selection"] for m in traces["meta"]]
    assert [s["value"] for s in sel] == [1.0, 1.0, 0.0, 0.0]  # the RM knows 5 + 5 is not 11
    assert [s["selected"] for s in sel] == [True, False, True, False]  # best of each, ties: first
    assert traces["gold"].to_list() == ["5", "5", None, None]
    assert traces["score"].to_list() == [1.0, 1.0, 0.0, 0.0]


def test_best_of_n_picks_the_sample_the_reward_model_scores_highest():
    """Samples of one problem differ (one slips), so their rewards differ: the pick must be
    the right one wherever it sits, not the first of a tie."""
    traces = _best_of_n_by_endpoint([f"[odd] What is {a} + {a + 4}?" for a in range(6)])
    positions = []
    for part in traces.partition_by("problem_id", maintain_order=True):
        sel = [json.loads(m)["selection"] for m in part["meta"]]
        values = [s["value"] for s in sel]
        assert sorted(values) == [0.0, 1.0]  # no tie
        (picked,) = [i for i, s in enumerate(sel) if s["selected"]]
        assert values[picked] == 1.0 and part["gold"][0] == part["predicted"][picked]
        positions.append(picked)
    assert set(positions) == {0, 1}  # the right sample is sometimes second
