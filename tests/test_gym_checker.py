"""The reasoning-gym checker (generators/verify/gym_checker.py) in the answer pool: model text
a family's scorer would run as Python is never run, the scorers this layer corrects, partial
credit against the recipe's threshold, `<answer>` tags, time limits, worker threads."""

from __future__ import annotations

import json
import threading
import time
from unittest.mock import patch

import polars as pl
import pytest
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from reasonfactory.generators.problems.gym import GymError, level_config, next_level
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify import gym_checker
from reasonfactory.generators.verify.answer import Outcome
from reasonfactory.generators.verify.answer_pool import (
    PoolOptions,
    judge_answers_scored,
    score_answers,
)
from reasonfactory.generators.verify.gym_checker import (
    gym_spec,
    parse_spec,
    read_answer,
    scorer,
    with_tagged_answers,
)


def _problem(family: str, seed: int = 3, index: int = 0, **kw) -> tuple[str, str, dict]:
    row = load_problems(f"gym:{family}", size=index + 1, seed=seed, **kw).row(index, named=True)
    meta = json.loads(row["meta"])
    return meta["checker"], row["gold"], meta


def _outcomes(triples, **options) -> list[str]:
    return [c.outcome.value for c in score_answers(triples, PoolOptions(**options))]


def test_model_text_a_scorer_would_eval_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').close() or [[0]]"
    spec, gold, _ = _problem("binary_matrix")
    # reasoning-gym 0.1.25's own scorer evals it (the reason for the guard) ...
    scorer("binary_matrix", "{}").score_answer(payload, {"answer": gold, "metadata": {}})
    assert marker.exists()
    marker.unlink()
    # ... ours refuses it, in the pool, and says why
    checked = score_answers([(spec, gold, payload)])[0]
    assert checked.outcome is Outcome.WRONG and checked.score == 0.0
    assert "not evaluated" in checked.why and not marker.exists()
    # a literal still earns the family's partial credit (a list of rows: 0.1)
    rows = [[int(x) for x in line.split()] for line in gold.splitlines()]
    assert score_answers([(spec, gold, repr(rows))])[0].score == pytest.approx(0.1)


@pytest.mark.parametrize(
    "answer",
    [
        "x.__class__",
        "exit()",
        "preview(x)",
        "__import__('os').getcwd()",
        "Symbol('x')",
        "x" + "+x" * 2000,
        "[x for x in (1, 2)]",
    ],
)
def test_formulas_for_sympy_hold_nothing_but_math(answer):
    spec, gold, _ = _problem("simple_integration")
    checked = score_answers([(spec, gold, answer)])[0]
    assert checked.outcome is Outcome.WRONG and checked.why.startswith("not parsed")


def test_integration_answers_in_plain_math_are_scored():
    spec, gold, _ = _problem("simple_integration")
    assert _outcomes([(spec, gold, gold), (spec, gold, gold + " + 1"), (spec, gold, "x")]) == [
        "correct",
        "correct",  # a different constant of integration is still right
        "wrong",
    ]


def test_puzzle24_uses_the_countdown_rule_not_any_expression_making_24():
    spec, gold, meta = _problem("puzzle24")
    numbers = json.loads(spec.removeprefix("gym:"))["metadata"]["numbers"]
    foreign = "(1 + 2 + 3) * 4" if sorted(numbers) != [1, 2, 3, 4] else "(2 + 2 + 2) * 4"
    # reasoning-gym's scorer takes any four numbers in range that make 24
    assert scorer("puzzle24", "{}").score_answer(foreign, {"metadata": meta}) == 1.0
    assert _outcomes([(spec, gold, gold), (spec, gold, foreign)]) == ["correct", "wrong"]


def test_game_of_life_halting_compares_the_answer_not_its_truthiness():
    spec = gym_spec("game_of_life_halting", {}, {})
    assert scorer("game_of_life_halting", "{}").score_answer("False", {"answer": "True"}) == 1.0
    assert _outcomes([(spec, "True", "False"), (spec, "True", "true")]) == ["wrong", "correct"]


def test_arc_boards_stored_as_json_still_match():
    spec, gold, _ = _problem("arc_agi")
    assert isinstance(parse_spec(spec)["metadata"]["output"], list)  # JSON has no tuples
    assert _outcomes([(spec, gold, gold)]) == ["correct"]


def test_partial_credit_is_kept_and_the_threshold_is_the_recipes():
    spec, gold, _ = _problem("string_insertion")
    as_list = repr(list(gold))  # the family's 0.1 for the answer as a list of characters
    frame = pl.DataFrame(
        {
            "trace_id": ["a", "b"],
            "predicted": [gold, as_list],
            "gold": [gold, gold],
            "gold_source": ["problem", "problem"],
            "checker": [spec, spec],
            "meta": ["{}", "{}"],
        }
    )
    strict = apply_filters(frame, [FilterSpec("answer")])
    assert strict["status"].to_list() == ["kept", "rejected"]
    scores = [json.loads(m)["details"]["answer"]["score"] for m in strict["meta"]]
    assert scores == [1.0, pytest.approx(0.1)]
    lenient = apply_filters(frame, [FilterSpec("answer", {"min_score": 0.1})])
    assert lenient["status"].to_list() == ["kept", "kept"]


def test_answer_tags_are_read_where_no_boxed_answer_is():
    spec, gold, _ = _problem("maze")
    frame = pl.DataFrame(
        {
            "checker": [spec, spec, None],
            "response": [f"<answer>{gold}</answer>", "\\boxed{3} <answer>9</answer>", "<answer>1"],
            "predicted": [None, "3", None],
        }
    )
    assert with_tagged_answers(frame)["predicted"].to_list() == [gold, "3", None]
    assert read_answer("<answer>1") is None and read_answer(None) is None


def test_a_slow_scorer_costs_its_own_check_only():
    spec, gold, _ = _problem("maze")
    real = gym_checker.score_gym

    def slow(checker, g, pred):
        if pred == "slow":
            time.sleep(30)
        return real(checker, g, pred)

    started = time.monotonic()
    with patch("reasonfactory.generators.verify.answer_pool.score_gym", slow):
        outcomes = _outcomes([(spec, gold, "slow"), (spec, gold, gold)], timeout_s=0.5, workers=1)
    assert outcomes == ["timeout", "correct"]
    assert time.monotonic() - started < 20


def test_checks_run_from_a_worker_thread():
    spec, gold, _ = _problem("chain_sum")
    out = []
    thread = threading.Thread(
        target=lambda: out.extend(judge_answers_scored([gold, "2"], [gold, "2"], [spec, None]))
    )
    thread.start()
    thread.join(timeout=60)
    assert [c.outcome for c in out] == [Outcome.CORRECT, Outcome.CORRECT]
    assert out[0].score == 1.0 and out[1].score is None


def test_bad_specs_and_sources_are_one_line_errors():
    with pytest.raises(ValueError, match="not gym"):
        parse_spec("gym:{nope")
    with pytest.raises(GymError, match="unknown reasoning-gym family 'nope'; known: ab,"):
        load_problems("gym:nope")
    with pytest.raises(GymError, match="no reference answer"):
        load_problems("gym:rush_hour")
    with pytest.raises(GymError, match="refused the config"):
        load_problems("gym:chain_sum", config={"min_terms": 9, "max_terms": 2})
    with pytest.raises(GymError, match="needs `families`"):
        load_problems("gym:composite")


def test_levels_and_the_curriculum_rule():
    assert level_config("chain_sum", 0)["max_terms"] < level_config("chain_sum", 3)["max_terms"]
    rows = load_problems("gym:chain_sum", size=5, level=2)
    assert {json.loads(m)["level"] for m in rows["meta"]} == {2}
    assert {json.loads(m)["difficulty"]["num_terms"][1] for m in rows["meta"]} == {4}
    band = (0.2, 0.8)
    assert [next_level(1, r, band, 3) for r in (None, 0.0, 0.2, 0.8, 0.81)] == [1, 0, 1, 1, 2]


def test_a_composite_mixes_families_by_weight():
    rows = load_problems(
        "gym:composite", size=60, families={"maze": 3, "gcd": {"weight": 1, "level": 1}}
    )
    sources = rows["source"].value_counts().sort("source")
    counts = dict(zip(sources["source"], sources["count"], strict=True))
    assert set(counts) == {"gym:maze", "gym:gcd"} and counts["gym:maze"] > counts["gym:gcd"]
    gcd = [json.loads(m) for s, m in zip(rows["source"], rows["meta"], strict=True) if "gcd" in s]
    assert {m["level"] for m in gcd} == {1}
    outcomes = judge_answers_scored(
        rows["gold"].to_list(),
        rows["gold"].to_list(),
        [json.loads(m)["checker"] for m in rows["meta"]],
    )
    assert {c.outcome for c in outcomes} == {Outcome.CORRECT}
