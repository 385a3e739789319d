"""The layout a PRM is trained on from sim tree data, and the metrics that judge it.

`tree` searches built-in arithmetic problems on the sim at error_rate 0.3 (a slip writes a
result off by 1-10 or 20); its nodes go into a real DuckDB warehouse and out through `export
prm`. In a tree export a bad step always ends its
path (the verifier stops there), so "last step" and "bad" coincide in every row; a causal
PRM cannot see whether a step is last, so the only signal it can learn is the step's own
arithmetic. The first test pins the layout: every label sits on the separator after its
step, and each tree node is labelled once. The second pins the held-out metrics: an answer
step is always labelled good in a tree export (a path stops at its first failed step), so a
PRM that only spots answers scores above 0.5 over all steps, and only the metrics without
answer steps and between siblings show it learned nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from reasonfactory.generators.engines.prm import prm_inputs
from reasonfactory.generators.methods.beam import EquationsScorer
from reasonfactory.generators.student import build_student
from reasonfactory.generators.train_prm import first_sightings, heldout_metrics

PROBLEMS = 400


@pytest.fixture(scope="module")
def sim_prm_export(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    try:
        from bench_prm_steps import tree_rows  # the rows bench_prm_steps.py scores
    finally:
        sys.path.pop(0)
    tmp = tmp_path_factory.mktemp("prm-sim")
    return tmp, tree_rows(PROBLEMS, 5, tmp)


def test_labels_sit_on_the_separator_after_their_step_once_per_node(sim_prm_export, tmp_path):
    _, rows = sim_prm_export
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(build_student(tmp_path / "base")))
    for row in rows[:50]:
        ids, at = prm_inputs(tokenizer, row["prompt"], row["completions"], "\n\n")
        for step, p in zip(row["completions"], at, strict=True):
            assert tokenizer.decode(ids[: p + 1]).endswith(step + "\n\n")
    # Bad steps end their paths: a layout fact the PRM must not (and, causal, cannot) use.
    assert all(r["labels"][:-1] == [True] * (len(r["labels"]) - 1) for r in rows)
    fresh = first_sightings(rows)
    nodes = {(r["tree_id"], n) for r in rows for n in r["node_ids"]}
    assert sum(map(sum, fresh)) == len(nodes) < sum(len(r["node_ids"]) for r in rows)


class AnswerSpotter:
    """A PRM that only tells an answer paragraph from a working step (what the bench's
    trained PRM turned out to do: README, the search section)."""

    def score_steps(self, items):
        return [[0.9 if "boxed" in step else 0.5 for step in steps] for _, steps in items]


def test_held_out_metrics_are_not_fooled_by_a_prm_that_only_spots_answers(sim_prm_export):
    _, rows = sim_prm_export
    spotted = heldout_metrics(AnswerSpotter(), rows)
    assert spotted["heldout_steps"] >= 200 and spotted["heldout_auroc"] > 0.55, spotted
    assert spotted["heldout_auroc_steps"] == 0.5 and spotted["heldout_sibling_win"] == 0.5
    assert 200 <= spotted["heldout_working_steps"] < spotted["heldout_steps"]
    # The arithmetic verifier as a step scorer (1 true, 0 false): what a PRM that judged the
    # steps would reach, on the same rows.
    judge = EquationsScorer()
    right = heldout_metrics(judge, rows)
    assert right["heldout_auroc_steps"] > 0.95 and right["heldout_sibling_win"] > 0.95, right
    assert right["heldout_sibling_pairs"] == spotted["heldout_sibling_pairs"] > 50
