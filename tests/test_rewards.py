"""`reasonfactory.rewards`: the filters' verdicts as rewards, in each trainer's signature.

The agreement test scores every stored trace of a mixed run (self_output, distill, code,
Countdown: tests/rl_mixed.py) from its completion text and its problem's `export rl` row, and
checks each reward against the verdict the filter stored for it. The trainer tests read the
verl and OpenRLHF exports back as those trainers do and score known right and wrong
completions: stored traces the answer filter judged, and hand-written ones.
"""

from __future__ import annotations

import functools
import json

import polars as pl
import pytest
from reasonfactory.filters.rewards import Rewards, answer_reward, format_reward, steps_reward
from reasonfactory.filters.rewards_trainers import compute_score, reward_func
from reasonfactory.generators.rl_rows import export_rl, rl_rows
from reasonfactory.warehouse.export_rl import RlSelection, rl_problems
from reasonfactory.warehouse.store import Warehouse
from rl_mixed import TRACES, compare, stored_completion

RIGHT = "<think>\nStep 1: {work}\n</think>\n\nThe answer is \\boxed{{{answer}}}."


@functools.cache
def _stored(warehouse) -> tuple[pl.DataFrame, pl.DataFrame]:
    with Warehouse(warehouse, read_only=True) as wh:
        rows = rl_rows(rl_problems(wh, RlSelection()))
        traces = wh.sql(TRACES)
    return traces, rows


def test_rewards_agree_with_the_filters_on_every_stored_trace(rl_warehouse):
    traces, rows = _stored(rl_warehouse)
    # a longer check limit than the run's 5 s: a loaded machine must not turn a verdict into
    # a timeout (the limit changes no rule)
    result = compare(traces, rows, Rewards(answer={"timeout_s": 60}))
    assert result["disagree"] == []
    methods = dict(result["methods"])
    assert set(methods) == {"self_output", "distill", "sos"}
    checkers = rows["checker"].to_list()
    assert any(c and c.startswith("code:") for c in checkers)
    assert any(c and c.startswith("countdown:") for c in checkers)
    # every stored trace of an exported problem was scored: 4 rewards each (format: not for
    # a trace the generator itself failed)
    exported = traces.filter(pl.col("problem_id").is_in(rows["problem_id"].implode()))
    assert result["traces"] == exported.height > 80
    assert result["verdicts"] >= 3 * result["traces"]
    answers = result["scores"]["answer"]
    assert 0 < answers.count(1.0) < len(answers) and answers.count(0.0) > 0


def _known(warehouse, checker_prefix: str | None):
    """(completion, gold, checker, right) for stored traces of one kind of problem."""
    traces, rows = _stored(warehouse)
    frame = traces.join(rows.select("problem_id", "gold", "checker"), on="problem_id")
    if checker_prefix is None:
        frame = frame.filter(pl.col("checker").is_null())
    else:
        frame = frame.filter(pl.col("checker").str.starts_with(checker_prefix))
    frame = frame.filter(pl.col("correct").is_not_null())
    out = []
    for right in (True, False):
        pick = frame.filter(pl.col("correct") == right).head(3)
        for r in pick.iter_rows(named=True):
            text = stored_completion(r["thought"], r["response"], r["think_closed"])
            out.append((text, r["gold"], r["checker"], right))
    return out


def test_verl_export_reads_back_and_compute_score_scores_it(rl_warehouse, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    out = tmp_path / "verl"
    export_rl(rl_warehouse, out, fmt="verl")
    table = pq.read_table(out / "train.parquet")
    assert set(table.column_names) == {
        "data_source", "prompt", "ability", "reward_model", "extra_info"
    }  # fmt: skip
    ds = datasets.Dataset(table)
    rows = {(r["reward_model"]["ground_truth"], r["extra_info"]["checker"]): r for r in ds}
    assert len({r["extra_info"]["problem_id"] for r in ds}) == ds.num_rows
    assert {r["ability"] for r in ds} == {"math", "code"}
    for kind in (None, "countdown:", "code:"):
        known = _known(rl_warehouse, kind)
        assert {right for *_, right in known} == {True, False}, kind
        for text, gold, checker, right in known:
            row = rows[(gold, checker)]
            assert row["prompt"][0]["role"] == "user" and row["reward_model"]["style"] == "rule"
            score = compute_score(
                row["data_source"], text, row["reward_model"]["ground_truth"], row["extra_info"]
            )
            assert score == (1.0 if right else 0.0), (text[-80:], gold, checker)


def test_verl_compute_score_on_written_answers():
    info = {"checker": None}
    assert compute_score("builtin:arithmetic", RIGHT.format(work="6 * 7 = 42", answer="42"),
                         "42", info) == 1.0  # fmt: skip
    assert compute_score("x", RIGHT.format(work="6 * 7 = 43", answer="43"), "42", info) == 0.0
    assert compute_score("x", "I do not know.", "42", info) == 0.0
    # an unparseable gold decides nothing: 0.0 for verl, which takes no None
    assert compute_score("x", RIGHT.format(work="1 = 1", answer="1"), None, info) == 0.0
    countdown = {"checker": "countdown:4,6,1"}
    assert compute_score("cd", RIGHT.format(work="ok", answer="4 * 6 * 1"), "24", countdown) == 1.0
    # reasoning-gym #265: an answer that reaches the target with numbers it was not given
    assert compute_score("cd", RIGHT.format(work="ok", answer="4 * 6"), "25", countdown) == 0.0
    assert compute_score("cd", RIGHT.format(work="ok", answer="20 + 4"), "24", countdown) == 0.0


def test_openrlhf_export_and_reward_func(rl_warehouse, tmp_path):
    import datasets
    import pyarrow.json
    import torch

    out = tmp_path / "orl"
    export_rl(rl_warehouse, out, fmt="openrlhf")
    ds = datasets.Dataset(pyarrow.json.read_json(out / "train.jsonl"))
    assert {"input", "label"} <= set(ds.column_names)
    rows = {(json.loads(r["label"])["gold"], json.loads(r["label"])["checker"]): r for r in ds}
    queries, prompts, labels, want = [], [], [], []
    for kind in (None, "countdown:", "code:"):
        for text, gold, checker, right in _known(rl_warehouse, kind):
            row = rows[(gold, checker)]
            prompt = "<|im_start|>user\n" + row["input"][-1]["content"] + "<|im_end|>\n"
            queries.append(prompt + text)
            prompts.append(prompt)
            labels.append(row["label"])
            want.append(1.0 if right else 0.0)
    # a bare gold as the label (a file not made by `export rl`), and an undecidable one
    queries += ["Q" + RIGHT.format(work="2 + 2 = 4", answer="4"), "Q\\boxed{4}"]
    prompts += ["Q", "Q"]
    labels += ["4", json.dumps({"gold": None, "checker": None})]
    want += [1.0, 0.0]
    result = reward_func(queries, prompts, labels)
    assert isinstance(result["rewards"], torch.Tensor)
    assert result["rewards"].tolist() == want
    assert result["scores"].tolist() == want
    assert result["extra_logs"]["undecided"].item() == pytest.approx(1 / len(want))


def test_trl_signatures_none_for_undecided_and_weighted_sum():
    chat = [[{"role": "assistant", "content": RIGHT.format(work="2 + 3 = 5", answer="5")}]]
    kwargs = {"gold": ["5"], "checker": [None], "problem_id": ["p"], "trainer_state": None}
    assert answer_reward(chat, **kwargs) == [1.0]
    assert format_reward(chat, **kwargs) == [1.0]
    assert steps_reward(chat, **kwargs) == [1.0]
    assert steps_reward(["<think>\nI guess.\n</think>\n\n\\boxed{5}"]) == [None]  # no claim
    assert steps_reward(["<think>\nStep 1: 2 + 3 = 6\n</think>\n\n\\boxed{6}"]) == [0.0]
    assert answer_reward(chat, gold=[None], checker=[None]) == [None]  # no gold: undecided
    rewards = Rewards()
    both = rewards.weighted({"answer": 1.0, "format": 0.5})
    assert both(chat, **kwargs) == [1.5]
    assert both(["5"], gold=["5"], checker=[None]) == [0.0]  # no boxed answer, no <think>
    assert rewards.weighted({"answer": 1.0})(chat, gold=[None], checker=[None]) == [None]
    with pytest.raises(ValueError, match="unknown reward 'lenght'"):
        rewards.weighted({"lenght": 1.0})
    with pytest.raises(ValueError, match="2 completions but 1 golds"):
        answer_reward(["a", "b"], gold=["1"], checker=["x"])
    # language: the share of prose in the target script; another language scores 0.0
    english = "<think>\nFirst we add the two numbers together to get the total.\n</think>\n\n"
    mixed = english.replace("the total", "the total 总数")
    scores = rewards.language_reward([english + "\\boxed{5}", mixed + "\\boxed{5}"])
    assert scores[0] == 1.0 and 0.0 < scores[1] < 0.95
    german = Rewards(language={"lang": "de"}).language_reward([english + "\\boxed{5}"])
    assert german == [0.0]
