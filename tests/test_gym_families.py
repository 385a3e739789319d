"""Twenty reasoning-gym families across eight categories: every gold answer is judged right
by the checker and the filters, and another problem's answer of the same family wrong.

For each family, 50 problems made by `load_problems("gym:NAME")`; each answered twice, in a
reply as a model writes it (`<think>...</think>` then `\\boxed{...}`): with its own gold,
and with the first other problem's gold that differs from it. Both go through what a run
does to a shard (attach the checker from `problems.meta`, the `format` and `answer` filters,
the family's scorer in the answer pool).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import parse_completion
from reasonfactory.generators.verify.checkers import attach_checkers

FAMILIES = {
    "chain_sum": "arithmetic",
    "basic_arithmetic": "arithmetic",
    "gcd": "arithmetic",
    "prime_factorization": "arithmetic",
    "simple_equations": "algebra",
    "polynomial_multiplication": "algebra",
    "complex_arithmetic": "algebra",
    "word_sorting": "algorithmic",
    "caesar_cipher": "algorithmic",
    "spell_backward": "algorithmic",
    "number_sorting": "algorithmic",
    "knights_knaves": "logic",
    "syllogism": "logic",
    "shortest_path": "graphs",
    "family_relationships": "graphs",
    "maze": "games",
    "countdown": "games",
    "mini_sudoku": "games",
    "number_sequence": "cognition",
    "arc_1d": "arc",
}
PER_FAMILY = 50


def _reply(answer: str) -> str:
    return f"<think>\nI worked it out.\n</think>\n\nThe answer is \\boxed{{{answer}}}."


@pytest.fixture(scope="module")
def judged() -> pl.DataFrame:
    problems = pl.concat(
        [load_problems(f"gym:{name}", size=PER_FAMILY, seed=11) for name in FAMILIES]
    )
    rows = []
    for source, group in problems.group_by("source", maintain_order=True):
        golds = group["gold"].to_list()
        for i, (pid, gold) in enumerate(zip(group["problem_id"], golds, strict=True)):
            other = next(g for g in golds[i + 1 :] + golds[:i] if g != gold)
            for kind, answer in (("gold", gold), ("perturbed", other)):
                parsed = parse_completion(_reply(answer))
                rows.append(
                    {
                        "trace_id": f"{pid}-{kind}",
                        "problem_id": pid,
                        "kind": kind,
                        "family": source[0].removeprefix("gym:"),
                        "thought": parsed.thought,
                        "response": parsed.response,
                        "predicted": parsed.predicted,
                        "think_closed": parsed.think_closed,
                        "finish_reason": "stop",
                        "gold": gold,
                        "gold_source": "problem",
                        "meta": "{}",
                    }
                )
    traces = attach_checkers(pl.DataFrame(rows), problems)
    out = apply_filters(traces, [FilterSpec("format"), FilterSpec("answer")])
    return out.with_columns(problems=pl.lit(problems.height))


def test_twenty_families_in_five_categories_or_more(judged):
    assert len(FAMILIES) >= 20 and len(set(FAMILIES.values())) >= 5
    assert judged["problems"][0] == PER_FAMILY * len(FAMILIES)  # distinct questions each


def test_every_gold_answer_is_kept_by_the_family_checker(judged):
    gold = judged.filter(pl.col("kind") == "gold")
    assert gold["checker"].str.starts_with("gym:").all()
    bad = gold.filter(pl.col("status") != "kept")
    assert bad.height == 0, bad.select("family", "predicted", "reject_reason", "meta").head(5)
    assert gold["correct"].all()
    scores = [json.loads(m)["details"]["answer"]["score"] for m in gold["meta"]]
    assert scores == [1.0] * gold.height


def test_another_problems_answer_is_rejected_as_wrong(judged):
    wrong = judged.filter(pl.col("kind") == "perturbed")
    by_family = wrong.group_by("family").agg(
        rejected=(pl.col("reject_reason") == "wrong_answer").sum(), n=pl.len()
    )
    assert by_family.filter(pl.col("rejected") != pl.col("n")).height == 0, by_family
    assert not wrong["correct"].any()
    assert wrong.height == PER_FAMILY * len(FAMILIES)


def test_each_problem_stores_what_its_check_needs(judged):
    problems = load_problems("gym:knights_knaves", size=3, seed=11)
    meta = json.loads(problems["meta"][0])
    assert meta["family"] == "knights_knaves" and meta["category"] == "logic"
    assert meta["difficulty"] == {"n_people": 2, "depth_constraint": 2, "width_constraint": 2}
    spec = json.loads(meta["checker"].removeprefix("gym:"))
    assert spec["family"] == "knights_knaves" and "solution" in spec["metadata"]
    # same seed, same problems (ids too); another seed, other problems
    again = load_problems("gym:knights_knaves", size=3, seed=11)
    assert again["problem_id"].to_list() == problems["problem_id"].to_list()
    other = load_problems("gym:knights_knaves", size=3, seed=12)
    assert set(other["problem_id"]).isdisjoint(problems["problem_id"])


def test_the_readme_procedural_recipes_parse_and_make_what_they_say():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Procedural problems: reasoning-gym", 1)[1].split("\n## ", 1)[0]
    three, curriculum = re.findall(r"```yaml\n(.*?)```", section, re.S)
    recipe = parse_recipe(yaml.safe_load(three))
    p = recipe.problems
    rows = load_problems(p.source, size=30, seed=p.seed, level=p.level, families=p.families)
    metas = [json.loads(m) for m in rows["meta"]]
    assert {m["family"] for m in metas} == {"chain_sum", "knights_knaves", "maze"}
    assert {m["family"]: m["level"] for m in metas} == {
        "chain_sum": 1,
        "knights_knaves": 1,
        "maze": 2,
    }
    rounds = parse_recipe({"name": "c", **yaml.safe_load(curriculum)}).problems.curriculum
    assert (rounds.rounds, rounds.band, rounds.start) == (5, (0.2, 0.8), 0)
