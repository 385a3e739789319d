"""How a PRM's step scores become a path's score in a search (bench/bench_search.py).

A PRM trained on a tree export learns labels that judge each step by its own check (a tree
stops a path at its first failed step), so a path is right when its worst step is. With
`aggregate: last` a sample that slipped early and then computed its last step right (on the
wrong value) ranks with a clean one; `min` ranks it by the slip. Shown with the arithmetic
verifier as a perfect step judge on sim samples, and pinned in the bench's PRM rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.prm import PrmPairScorer
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import EquationsScorer
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import build_messages, parse_completion
from reasonfactory.generators.verify.answers import answer_key, extract_boxed


def test_best_of_n_by_the_last_step_picks_samples_that_slipped_early_and_min_does_not():
    problems = load_problems("builtin:arithmetic", limit=60, difficulty=(3, 4), seed=3)
    questions, golds = list(problems["question"]), list(problems["gold"])
    replies = SimEngine(error_rate=0.3).generate(
        [GenRequest(messages=build_messages(q), n=8, seed=i) for i, q in enumerate(questions)]
    )
    right = {}
    for how in ("last", "min"):
        scorer = PrmPairScorer(EquationsScorer(), how)
        hits = 0
        for q, gold, samples in zip(questions, golds, replies, strict=True):
            texts = [c.text for c in samples]
            scores = scorer.score([(q, t) for t in texts])
            best = texts[max(range(len(texts)), key=lambda i: (scores[i], -i))]
            picked = extract_boxed(parse_completion(best).response)
            hits += answer_key(picked) == answer_key(gold)
        right[how] = hits / len(questions)
    assert right["min"] > 0.85 and right["last"] < right["min"] - 0.2, right


def test_bench_search_ranks_prm_paths_by_their_worst_step():
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    try:
        from bench_search import methods
    finally:
        sys.path.pop(0)
    rows = {name: config for name, _, config in methods(8, "/nonexistent/prm")}
    assert rows["best-of-N (PRM)"].selection.verifier.aggregate == "min"
    for name in ("beam (PRM)", "dvts (PRM)"):
        assert rows[name].aggregate == rows[name].scorer.aggregate == "min"


def test_a_recipe_that_names_no_aggregate_ranks_by_the_worst_step():
    """The default follows the labels `train --kind prm` learns (each step by its own check)."""
    from reasonfactory.flows.recipe import parse_recipe

    recipe = parse_recipe({
        "name": "prm-default", "problems": {"source": "builtin:arithmetic"},
        "generate": {"method": "beam", "scorer": {"kind": "prm", "model": "./my-prm"}},
    })  # fmt: skip
    assert recipe.generate.aggregate == recipe.generate.scorer.aggregate == "min"
