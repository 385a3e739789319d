"""The `steps` filter on real text: GSM8K human solution lines (test set, calculator notes
removed), one paragraph per line, including prose with nothing to check."""

from __future__ import annotations

import polars as pl
from conftest import shared_data
from reasonfactory.filters.steps import steps_filter

# GSM8K test items 1 and 2, as written by people; a thought of prose and claims.
JANET = (
    "Janet's ducks lay 16 eggs per day.\n\n"
    "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n\n"
    "She makes 9 * 2 = $18 every day at the farmer\u2019s market."
)
FIBER = (
    "It takes 2/2=1 bolt of white fiber\n\nSo the total amount of fabric is 2+1=3 bolts of fabric"
)


def test_prose_paragraphs_are_not_false_steps():
    verdicts = steps_filter(
        pl.DataFrame({"thought": [JANET, FIBER, JANET.replace("= $18", "= $17"), "No work."]})
    )
    assert verdicts["reason"].to_list() == [None, None, "false_step", "no_claims"]
    assert verdicts["detail"].struct.field("claims").to_list()[:2] == [2, 2]


def test_an_answer_no_step_results_in_is_rejected_on_request():
    thoughts = [JANET, FIBER, JANET, FIBER, "So 12/20 * 100% = 60% of the students."]
    answers = ["18", "3", "19", "33", "60"]
    df = pl.DataFrame({"thought": thoughts, "predicted": answers})
    assert steps_filter(df)["reason"].to_list() == [None] * 5  # off by default
    verdicts = steps_filter(df, {"answer_in_steps": True})
    assert verdicts["reason"].to_list() == [
        None,
        None,
        "answer_not_in_steps",
        "answer_not_in_steps",
        None,  # `60%` counts as 60
    ]
    assert verdicts["detail"].struct.field("expected").to_list()[2] == "19"
    symbolic = pl.DataFrame({"thought": [FIBER], "predicted": ["\\frac{3}{1}"]})
    assert steps_filter(symbolic, {"answer_in_steps": True})["ok"].to_list() == [True]


def test_answer_in_steps_on_every_gsm8k_test_solution():
    """Measured on all 1,319 human solutions: right answers pass (at most 3% rejected: a
    final answer no equation writes, e.g. `x = 18` after prose), slipped answers do not."""
    import json
    import re

    path = shared_data("gsm8k_test.jsonl")
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    thoughts, golds = [], []
    for r in rows:
        solution, gold = r["answer"].split("####")
        lines = re.sub(r"<<[^>]*>>", "", solution).strip().split("\n")
        thoughts.append("\n\n".join(x for x in lines if x.strip()))
        golds.append(gold.strip().replace(",", ""))

    def rejected(answers: list[str]) -> float:
        df = pl.DataFrame({"thought": thoughts, "predicted": answers})
        base = steps_filter(df)["ok"]
        extra = base & ~steps_filter(df, {"answer_in_steps": True})["ok"]
        return extra.sum() / base.sum()

    assert rejected(golds) < 0.03
    assert rejected([str(int(float(g)) + 1) for g in golds]) > 0.95
