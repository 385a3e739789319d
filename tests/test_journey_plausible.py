"""Journey mistakes that look like a person's: plausibility rules over generated traces.

Injected into real sim traces (builtin arithmetic, five to seven operations, so sums and
products of three or more terms occur), and checked apart from the generator:
- a slip is one of the human kinds and stays near the right value;
- a dropped term drops one real term of a sum or product of three or more terms (never
  `a op b = a`);
- an error sometimes runs on for a step or two before it is noticed; the recorded offsets
  still cut out exactly the wrong step and the steps it ran into, the feedback then names
  the faulty step, and going back returns to it;
- the wrong step keeps what surrounds its claim (closing `$`, units, punctuation).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from fractions import Fraction

import polars as pl
import pytest
from journey_checks import check_journey
from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.methods.journey.inject import (
    SLIP_KINDS,
    inject_errors,
    plausible_slip,
)
from reasonfactory.generators.problems.sources import load_problems

CTX = RunContext("r", "fp", "sim")
FILTERS = [parse_filter_spec("format"), parse_filter_spec("answer")]
_NUM = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?(?:/\d+)?")


@pytest.fixture(scope="module")
def kept():
    problems = load_problems("builtin:arithmetic", limit=80, difficulty=(5, 7))
    out = journey(problems, SimEngine(error_rate=0.1), JourneyConfig(samples=2, detours=2), CTX)
    out = apply_filters(out.traces, FILTERS)
    sources = {r["trace_id"]: r for r in out.filter(method="self_output").iter_rows(named=True)}
    rows = []
    for row in out.filter(method="journey", status="kept").iter_rows(named=True):
        source = sources[json.loads(row["meta"])["journey"]["source_trace_id"]]
        rows.append((row, check_journey(row, plain_thought=source["thought"])))
    assert len(rows) >= 50
    return rows


def _errors(kept, kind):
    return [(row, e) for row, errors in kept for e in errors if e["type"] == kind]


def test_slips_are_human_kinds_near_the_value(kept):
    slips = _errors(kept, "arithmetic_slip")
    assert len(slips) >= 15
    kinds = Counter(e["why_slip"] for _, e in slips)
    assert set(kinds) <= set(SLIP_KINDS) and len(kinds) >= 3, kinds
    for _, e in slips:
        expected, wrong = Fraction(e["expected"]), Fraction(e["wrong_claim"].split("=")[1])
        assert plausible_slip(expected, wrong), e


# Real GSM8K solution lines (notes removed) whose claim sums or multiplies three terms
REAL_THOUGHT = "\n\n".join(
    [
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
        "The total is 80 + 20 + 35 = 135 dollars.",
        "So the boxes hold 3 * 4 * 5 = 60 cups.",
    ]
)


def test_a_dropped_term_is_one_term_of_a_longer_expression():
    shapes = set()
    for seed in range(40):
        made = inject_errors(
            REAL_THOUGHT, detours=1, rng=random.Random(seed), types=("dropped_term",)
        )
        [e] = made.errors
        lhs, wrong = (x.strip() for x in e["wrong_claim"].split("="))
        terms = _NUM.findall(lhs)
        assert len(terms) >= 3, e  # never from `a op b`: that would only write `a`
        assert e["why_dropped"].strip("-+* ") in terms, e
        shapes.add((lhs, wrong))
        if "*" in lhs:
            product = 1
            for t in terms:
                product *= int(t)
            assert Fraction(wrong) * int(e["why_dropped"].strip("* ")) == product, e
    assert len(shapes) >= 4  # different terms get dropped


def test_errors_sometimes_run_on_and_the_offsets_stay_exact(kept):
    runs = Counter(e["run_on"] for _, errors in kept for e in errors)
    assert runs[0] and (runs[1] + runs[2]) >= 5, runs
    for row, errors in kept:
        thought = row["thought"]
        for e in errors:
            span = thought[e["error_start"] : e["error_end"]]
            assert span.count("\n\n") == e["run_on"], (e, span)
            assert span.startswith(thought.split("\n\n")[e["error_para"]])
            feedback = thought[e["feedback_start"] : e["feedback_end"]]
            back = thought[e["backtrack_start"] : e["backtrack_end"]]
            correction = thought[e["correction_start"] : e["correction_end"]]
            step = f"Step {e['step']}"
            assert correction.startswith(step) and f"step {e['step']}" in back, e
            if e["run_on"]:
                assert f"step {e['step']}" in feedback, feedback  # names the faulty step


def test_the_wrong_step_keeps_its_markup_and_units():
    thought = "Step 1: $17 + 5 + 4 = 26$ apples. So 26 are left.\n\nStep 2: $26 * 2 = 52$."
    for seed in range(20):
        made = inject_errors(thought, detours=1, rng=random.Random(seed))
        e = made.errors[0]
        wrong = made.thought[e["error_start"] : e["error_end"]].split("\n\n")[0]
        if e["step"] == 1:
            assert wrong.startswith("Step 1: $") and wrong.endswith("$ apples."), wrong
            assert "So 26" not in wrong
        else:
            assert wrong.startswith("Step 2: $") and wrong.endswith("$."), wrong


def test_a_run_on_step_is_recomputed_from_the_wrong_value():
    thought = "Step 1: 17 + 5 = 22.\n\nStep 2: 22 * 3 = 66.\n\nStep 3: 66 - 6 = 60."
    seen = 0
    for seed in range(60):
        made = inject_errors(
            thought, detours=1, rng=random.Random(seed), types=("arithmetic_slip",)
        )
        e = made.errors[0]
        if e["step"] != 1 or not e["run_on"]:
            continue
        seen += 1
        carried = made.thought[e["error_start"] : e["error_end"]].split("\n\n")[1]
        wrong = Fraction(e["wrong_claim"].split("=")[1])
        assert carried == f"Step 2: {wrong} * 3 = {wrong * 3}.", carried
    assert seen >= 3


def test_chinese_journeys_from_chinese_steps_pass_the_chinese_language_filter():
    problems = pl.concat(
        [
            load_problems("builtin:arithmetic", limit=20, difficulty=(3, 5)),
            load_problems("builtin:linear", limit=10),
        ]
    )
    config = JourneyConfig(samples=2, language="zh")
    out = journey(problems, SimEngine(error_rate=0.1, language="zh"), config, CTX)
    filters = [*FILTERS, parse_filter_spec({"language": {"lang": "zh"}})]
    out = apply_filters(out.traces, filters)
    sources = {r["trace_id"]: r for r in out.filter(method="self_output").iter_rows(named=True)}
    journeys = out.filter(method="journey")
    kept = journeys.filter(status="kept")
    # every journey that had a correct base is kept: none is lost to the language filter
    assert kept.height >= 20
    assert set(journeys.filter(status="rejected")["reject_reason"]) <= {"no_correct_base"}
    for row in kept.iter_rows(named=True):
        source = sources[json.loads(row["meta"])["journey"]["source_trace_id"]]
        for e in check_journey(row, plain_thought=source["thought"]):
            step = row["thought"][e["error_start"] : e["error_end"]]
            assert step.startswith(f"第 {e['step']} 步：") and step.endswith("。"), step
        assert "Wait" not in row["thought"] and "Step" not in row["thought"]
        assert row["response"].startswith("答案是")


def test_chinese_feedback_is_not_written_into_english_steps():
    problems = load_problems("builtin:arithmetic", limit=6, difficulty=(3, 4))
    out = journey(problems, SimEngine(error_rate=0.0), JourneyConfig(samples=1, language="zh"), CTX)
    journeys = out.traces.filter(method="journey")
    assert set(journeys["generator_reason"]) == {"steps_not_in_language"}
