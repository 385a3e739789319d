"""sos: every kept trace is a valid Stream-of-Search trace whose answer reaches the target.

The grammar check and the expression evaluator (`sos_grammar.py`) are written apart from
the generator.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest
from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.methods.sos import STRATEGIES, SosConfig, search_countdown, sos
from reasonfactory.generators.problems.countdown import parse_countdown
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.answers import extract_boxed
from sos_grammar import evaluate_expression, parse_sos

CTX = RunContext("r", "fp", "sim")
FILTERS = [parse_filter_spec("format"), parse_filter_spec("answer")]


@pytest.fixture(scope="module")
def problems():
    return load_problems("builtin:countdown", limit=30, seed=0)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_writes_the_grammar(problems, name):
    for i, question in enumerate(problems["question"]):
        numbers, target = parse_countdown(question)
        result = search_countdown(numbers, target, STRATEGIES[name], rng=random.Random(i))
        replay = parse_sos(result.text)
        assert replay["solved"] == result.solved
        assert replay["explored"] == result.explored
        assert (replay["numbers"], replay["target"]) == (list(numbers), target)
        if STRATEGIES[name].search == "bfs" and not result.solved:
            assert result.text.endswith("No solution found.")


def test_kept_traces_parse_and_their_answers_reach_the_target(problems):
    config = SosConfig(samples=12, strategies=sorted(STRATEGIES))
    out = apply_filters(sos(problems, None, config, CTX).traces, FILTERS)
    kept = out.filter(status="kept")
    strategies = Counter(json.loads(m)["strategy"] for m in out["meta"])
    assert set(strategies) == set(STRATEGIES)  # the mix reached every strategy
    assert 0.3 < kept.height / out.height < 0.8
    for row in kept.iter_rows(named=True):
        replay = parse_sos(row["thought"])
        assert replay["solved"]
        expression = extract_boxed(row["response"])
        assert expression == row["predicted"]
        value, literals = evaluate_expression(expression)
        assert value == replay["target"]
        assert Counter(literals) == Counter(replay["numbers"])
        meta = json.loads(row["meta"])
        assert row["score"] == pytest.approx(1 - (meta["explored"] + 1) / 1152)
        assert row["model"] == "symbolic:sos"


def test_failed_searches_are_stored_rejected_as_no_solution(problems):
    out = apply_filters(
        sos(problems, None, SosConfig(samples=6, strategies=["bfs1_sum"]), CTX).traces, FILTERS
    )
    failed = out.filter(status="rejected")
    assert failed.height > 0
    assert set(failed["reject_reason"]) == {"no_solution"}
    for row in failed.iter_rows(named=True):
        assert not parse_sos(row["thought"])["solved"]
        assert row["predicted"] is None and row["score"] == 0.0
        assert json.loads(row["meta"])["verdicts"]["generate"] == "no_solution"


def test_dfs_and_beam_explore_differently(problems):
    differ = 0
    for i, question in enumerate(problems["question"]):
        numbers, target = parse_countdown(question)
        dfs = search_countdown(numbers, target, STRATEGIES["dfs_sum"], rng=random.Random(i))
        beam1 = search_countdown(numbers, target, STRATEGIES["bfs1_sum"], rng=random.Random(i))
        beam5 = search_countdown(numbers, target, STRATEGIES["bfs5_sum"], rng=random.Random(i))
        assert beam1.explored <= 3  # greedy: one child per level, three levels
        assert beam5.explored <= 5 + 25 + 125
        differ += dfs.explored != beam1.explored
    assert differ >= len(problems) * 0.8


def test_node_budget_caps_exploration(problems):
    capped = sos(problems, None, SosConfig(samples=2, strategies=["dfs_sum"], max_nodes=5), CTX)
    rows = list(capped.traces.iter_rows(named=True))
    metas = [json.loads(r["meta"]) for r in rows]
    assert max(m["explored"] for m in metas) <= 5
    exhausted = [r for r, m in zip(rows, metas, strict=True) if m["budget_exhausted"]]
    assert exhausted
    assert {r["generator_reason"] for r in exhausted} == {"no_solution"}
    assert all(r["thought"].count("Exploring Operation") == 5 for r in exhausted)


def test_same_seed_same_traces_other_seed_other_mix(problems):
    a = sos(problems, None, SosConfig(samples=3), CTX).traces
    b = sos(problems, None, SosConfig(samples=3), CTX).traces
    c = sos(problems, None, SosConfig(samples=3, seed=1), CTX).traces
    assert a.drop("created_at").equals(b.drop("created_at"))
    assert a["thought"].to_list() != c["thought"].to_list()


def test_default_mix_is_the_papers(problems):
    out = sos(problems, None, SosConfig(samples=40), CTX).traces
    searches = Counter(json.loads(m)["search"] for m in out["meta"])
    share = searches["dfs"] / out.height
    assert 0.4 < share < 0.6  # DFS half the time, beam widths 1..5 the other half


def test_non_countdown_problem_is_a_user_error():
    from reasonfactory.warehouse.errors import UserError

    with pytest.raises(UserError, match="not a Countdown problem"):
        sos(load_problems("builtin:arithmetic", limit=1), None, SosConfig(), CTX)


def test_the_grammar_check_catches_broken_traces(problems):
    """The checker above is not vacuous: small corruptions of a valid trace fail it."""
    numbers, target = parse_countdown(problems["question"][0])
    text = search_countdown(numbers, target, STRATEGIES["dfs_sum"], rng=random.Random(0)).text
    parse_sos(text)
    lines = text.split("\n")
    explore = next(i for i, line in enumerate(lines) if line.startswith("Exploring"))
    move_back = next(
        i for i, line in enumerate(lines) if line.startswith("Moving") and i > explore + 3
    )
    broken = {
        "bad arithmetic": re.sub(
            r"=(\d+),", lambda m: f"={int(m.group(1)) + 1},", lines[explore], count=1
        ),
        "unknown line": "Trying something else",
    }
    for line in broken.values():
        corrupted = "\n".join([*lines[:explore], line, *lines[explore + 1 :]])
        with pytest.raises(AssertionError):
            parse_sos(corrupted)
    without_state = "\n".join([*lines[: move_back + 1], *lines[move_back + 2 :]])
    with pytest.raises(AssertionError):
        parse_sos(without_state)
