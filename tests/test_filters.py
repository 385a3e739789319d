"""Answer and format filters, and the pipeline that applies them in order."""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.filters.answer import answer_filter
from reasonfactory.filters.format import format_filter
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from reasonfactory.generators.prompts import parse_completion
from reasonfactory.generators.verify.answer import Outcome, check_answer


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("18", "18", Outcome.CORRECT),
        ("18", "18.0", Outcome.CORRECT),
        ("\\frac{5}{6}", "\\dfrac{5}{6}", Outcome.CORRECT),
        ("0.5", "\\frac{1}{2}", Outcome.CORRECT),
        ("18", "19", Outcome.WRONG),
        ("18", None, Outcome.WRONG),
        ("18", "", Outcome.WRONG),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", Outcome.CORRECT),
        ("\\text{}", "5", Outcome.GOLD_UNPARSEABLE),
    ],
)
def test_check_answer_three_outcomes(gold, pred, expected):
    assert check_answer(gold, pred) is expected


def _traces(texts: list[str], gold: str = "5", finish: str = "stop") -> pl.DataFrame:
    rows = []
    for i, text in enumerate(texts):
        p = parse_completion(text)
        rows.append(
            {
                "trace_id": f"t{i}",
                "thought": p.thought,
                "response": p.response,
                "predicted": p.predicted,
                "think_closed": p.think_closed,
                "finish_reason": finish,
                "gold": gold,
                "gold_source": "problem",
                "meta": json.dumps({"sample_index": i}),
            }
        )
    return pl.DataFrame(rows)


GOOD = "<think>\nStep 1: 2 + 3 = 5.\n</think>\n\nThe answer is \\boxed{5}."


@pytest.mark.parametrize(
    "text,reason",
    [
        (GOOD, None),
        ("<think>\nStep 1: 2 + 3 = 5.\n\nThe answer is \\boxed{5}.", "format:unclosed_think"),
        ("<think>\n\n</think>\n\nThe answer is \\boxed{5}.", "format:empty_thought"),
        ("<think>\n2 + 3 = 5\n</think>\n\nThe answer is 5.", "format:no_boxed"),
        ("<think>\n2 + 3 = 5\n</think>\n\n\\boxed{5} or \\boxed{6}", "format:multiple_boxed"),
        ("<think>\nfirst <think> again\n</think>\n\n\\boxed{5}", "format:nested_think"),
    ],
)
def test_format_rules(text, reason):
    verdict = format_filter(_traces([text]))
    assert verdict["reason"].to_list() == [reason]
    assert verdict["ok"].to_list() == [reason is None]


def test_truncated_trace_is_rejected_as_truncated():
    verdict = format_filter(_traces(["<think>\nStep 1: 2 + 3 = 5.\n\nStep 2:"], finish="length"))
    assert verdict["reason"].to_list() == ["truncated"]


def test_answer_filter_reasons_and_correct_column():
    df = _traces([GOOD, GOOD.replace("{5}", "{6}")])
    v = answer_filter(df)
    assert v["ok"].to_list() == [True, False]
    assert v["reason"].to_list() == [None, "wrong_answer"]
    assert v["correct"].to_list() == [True, False]
    no_gold = df.with_columns(gold=pl.lit(None, pl.String), gold_source=pl.lit("none"))
    assert answer_filter(no_gold)["reason"].to_list() == ["no_consensus", "no_consensus"]


def test_pipeline_first_failure_wins_and_every_verdict_is_kept():
    df = _traces([GOOD, "<think>\nx\n</think>\n\nThe answer is 6.", GOOD.replace("{5}", "{6}")])
    out = apply_filters(df, [FilterSpec("format"), FilterSpec("answer")])
    assert out["status"].to_list() == ["kept", "rejected", "rejected"]
    assert out["reject_reason"].to_list() == [None, "format:no_boxed", "wrong_answer"]
    verdicts = [json.loads(m)["verdicts"] for m in out["meta"]]
    # no boxed answer: nothing to read, which is not a wrong answer
    assert verdicts[1] == {"format": "format:no_boxed", "answer": "no_answer"}
    assert verdicts[0] == {"format": "ok", "answer": "ok"}
    assert json.loads(out["meta"][0])["sample_index"] == 0


def test_pipeline_is_idempotent():
    df = _traces([GOOD, GOOD.replace("{5}", "{7}")])
    specs = [FilterSpec("format"), FilterSpec("answer")]
    once = apply_filters(df, specs)
    twice = apply_filters(once, specs)
    assert once.equals(twice)
