"""Injected journey detours read the way a reader checks them, with the independent verifier.

Each detour of `from: inject` is judged on its text with `generators.verify` (the claim
reader `claims`, the step checks `steps`, the answer checker `answer`), never with the
generator's own tables or records (the record only says where the parts sit):
- the wrong step is really wrong: the step check finds its claim false, or, for a
  miscopied operand (a true equation over a wrong number), its left side differs from the
  step done right in one number and its result differs;
- the wrong step does not state the right value of its result (`so x = 8` after `= -8`);
- the feedback names the left side and states the right value and the wrong one;
- the correction passes the step check, and is the same step done right;
- the steps it ran into pass the step check (computed from the wrong value, not wrong again);
- every false step of the thought is fixed later (`steps.fixed_errors`);
- with the detour taken out the thought is the source trace again, and the final answer is
  right per the answer checker against the gold.

On sim traces (built-in arithmetic and linear problems) and on real text: GSM8K test
solutions (the first 60 of `shared/data/gsm8k_test.jsonl`, copied to
`fixtures/gsm8k_journey.jsonl`; calculator notes `<<...>>` removed, one line a step) served
by the `predictions` engine, so journey injects into lines people wrote.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import polars as pl
import pytest
from journey_checks import restated_right_value, stated_values
from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.predictions import PredictionsEngine
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.methods.journey.inject import inject_errors
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.chains import find_claims
from reasonfactory.generators.verify.steps import check_equations, fixed_errors

CTX = RunContext("r", "fp", "m")
FILTERS = [parse_filter_spec("format"), parse_filter_spec("answer")]
GSM8K = Path(__file__).parent / "fixtures" / "gsm8k_journey.jsonl"


def read_detour(thought: str, e: dict) -> list[str]:
    """What a reader finds wrong with one injected detour (empty: nothing)."""
    part = {
        role: thought[e[f"{role}_start"] : e[f"{role}_end"]]
        for role in ("error", "feedback", "correction")
    }
    wrong, *ran_into = part["error"].split("\n\n")
    done_right = part["correction"]
    problems = []
    claims, twins = find_claims(wrong), find_claims(done_right)
    at = wrong.find(e["written"])  # where the record says the wrong claim is written
    mine = [c for c in claims if c.start == at]
    if not mine or claims.index(mine[0]) >= len(twins):
        return [f"no claim to compare in {wrong!r} / {done_right!r}"]
    claim, twin = mine[0], twins[claims.index(mine[0])]
    check = check_equations(wrong)
    if check.ok is not False:
        # a true equation over a miscopied number: one number of the left side differs
        mine, right = stated_values(claim.lhs), stated_values(twin.lhs)
        differ = sum(a != b for a, b in zip(mine, right, strict=False))
        if len(mine) != len(right) or differ != 1:
            problems.append(f"the wrong step {wrong!r} is not wrong")
    if claim.rhs_value == twin.rhs_value:
        problems.append(f"the wrong step {wrong!r} has the right result")
    if restated_right_value(thought, e):
        problems.append(f"the wrong step {wrong!r} states the right value")
    said = stated_values(part["feedback"])
    if twin.lhs not in part["feedback"] or twin.rhs_value not in said:
        problems.append(f"{part['feedback']!r} does not name {twin.text}")
    if claim.rhs_value not in said:
        problems.append(f"{part['feedback']!r} does not name the wrong value {claim.rhs}")
    if check_equations(done_right).ok is not True:
        problems.append(f"the correction {done_right!r} fails the step check")
    problems += [f"ran into a false step {s!r}" for s in ran_into if check_equations(s).ok is False]
    return problems


def read_journey(row: dict, source: dict) -> list[str]:
    """What a reader finds wrong with a kept journey trace and its detours."""
    thought, errors = row["thought"], json.loads(row["meta"])["journey"]["errors"]
    problems = [p for e in errors for p in read_detour(thought, e)]
    false, fixed = fixed_errors(thought)
    if false != fixed:
        problems.append(f"{false - fixed} of {false} false steps are never fixed")
    paragraphs = thought.split("\n\n")
    detour = {i for e in errors for i in range(e["error_para"], e["feedback_para"] + 1)}
    if "\n\n".join(p for i, p in enumerate(paragraphs) if i not in detour) != source["thought"]:
        problems.append("without its detours the thought is not the source trace")
    answer = extract_boxed(row["response"])
    if answer != row["predicted"] or check_answer(row["gold"], answer) is not Outcome.CORRECT:
        problems.append(f"final answer {answer!r} against gold {row['gold']!r}")
    return problems


def kept_journeys(problems: pl.DataFrame, engine, **config) -> list[tuple[dict, dict, dict]]:
    """(journey row, its source row, its error records) for each kept journey."""
    out = journey(problems, engine, JourneyConfig(**config), CTX)
    traces = apply_filters(out.traces, FILTERS)
    sources = {r["trace_id"]: r for r in traces.filter(method="self_output").iter_rows(named=True)}
    rows = []
    for row in traces.filter(method="journey", status="kept").iter_rows(named=True):
        meta = json.loads(row["meta"])["journey"]
        rows.append((row, sources[meta["source_trace_id"]], meta["errors"]))
    return rows


def gsm8k_engine(tmp_path: Path) -> tuple[pl.DataFrame, PredictionsEngine]:
    """The fixture's problems, and an engine that answers each with its human solution."""
    lines = []
    for raw in GSM8K.read_text(encoding="utf-8").splitlines():
        record = json.loads(raw)
        solution, gold = record["answer"].split("####")
        steps = [re.sub(r"<<[^>]*>>", "", s).strip() for s in solution.strip().splitlines()]
        thought = "\n\n".join(s for s in steps if s)
        response = f"<think>\n{thought}\n</think>\n\nThe answer is \\boxed{{{gold.strip()}}}."
        lines.append(json.dumps({"question": record["question"], "response": response}))
    path = tmp_path / "gsm8k_solutions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = load_problems(str(GSM8K), answer_format="gsm8k")
    return problems, PredictionsEngine(str(path), "gsm8k-human", (str(GSM8K),))


@pytest.fixture(scope="module")
def sim_journeys():
    problems = pl.concat(
        [
            load_problems("builtin:arithmetic", limit=60, difficulty=(5, 7)),
            load_problems("builtin:linear", limit=60),
        ]
    )
    return kept_journeys(problems, SimEngine(error_rate=0.1), samples=2, detours=2)


@pytest.fixture(scope="module")
def gsm8k_journeys(tmp_path_factory):
    problems, engine = gsm8k_engine(tmp_path_factory.mktemp("gsm8k"))
    return [
        j
        for detours in (1, 2)
        for j in kept_journeys(problems, engine, samples=1, detours=detours, seed=detours)
    ]


@pytest.mark.parametrize("which", ["sim_journeys", "gsm8k_journeys"])
def test_a_reader_finds_each_detour_wrong_then_right(which, request):
    journeys = request.getfixturevalue(which)
    detours = [e for _, _, errors in journeys for e in errors]
    assert len(detours) >= 80, len(detours)
    assert {e["type"] for e in detours} >= {"arithmetic_slip", "sign_error", "wrong_operand"}
    assert sum(e["run_on"] > 0 for e in detours) >= 5  # some errors are noticed late
    found = {row["trace_id"]: read_journey(row, source) for row, source, _ in journeys}
    found = {k: v for k, v in found.items() if v}
    assert not found, (len(found), list(found.values())[:5])


def test_real_lines_keep_their_markup_and_carry_the_wrong_value(gsm8k_journeys):
    wrong_steps = [
        row["thought"][e["error_start"] : e["error_end"]].split("\n\n")[0]
        for row, _, errors in gsm8k_journeys
        for e in errors
    ]
    assert any("=$" in s or "= $" in s for s in wrong_steps)  # `She makes 9 * 2 = $17`
    dropped = [e for _, _, errors in gsm8k_journeys for e in errors if e["type"] == "dropped_term"]
    assert dropped  # real lines sum three terms (`16 - 3 - 4 = 9`); sim steps never do


def test_a_result_stated_before_its_claim_is_carried_too():
    # GSM8K test #12: each line states its result, then the calculation that gives it
    thought = (
        "He makes $10.5 selling lemons each year because 7 x 1.5 = 10.5\n\n"
        "He earns $7.5 each year from the lemon tree because 10.5 - 3 = 7.5\n\n"
        "It will take 12 years to earn enough to pay off the tree because 90 / 7.5 = 12\n\n"
        "He will make money in year 13 because 12 + 1 = 13"
    )
    seen = set()
    for seed in range(40):
        made = inject_errors(thought, detours=1, rng=random.Random(seed))
        [e] = made.errors
        assert not restated_right_value(made.thought, e), made.thought
        assert not read_detour(made.thought, e), made.thought
        seen.add(e["error_para"])
    assert len(seen) >= 3


def test_a_given_equal_to_the_result_is_not_guessed_at():
    # GSM8K test #52: `7.5 more pounds` is the result, stated first, and also an operand
    line = "He needs to remove 7.5 more pounds because 15 - 7.5 = 7.5"
    thought = f"30 comic books weigh 30 * 0.25 = 7.5 pounds\n\n{line}"
    for seed in range(20):
        made = inject_errors(thought, detours=1, rng=random.Random(seed))
        assert made.errors[0]["error_para"] == 0, made.thought  # the second line is not used


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
    assert kept.height >= 20  # every journey that had a correct base is kept
    assert set(journeys.filter(status="rejected")["reject_reason"]) <= {"no_correct_base"}
    for row in kept.iter_rows(named=True):
        source = sources[json.loads(row["meta"])["journey"]["source_trace_id"]]
        assert not read_journey(row, source), row["thought"]
        assert "Wait" not in row["thought"] and "Step" not in row["thought"]


def test_chinese_feedback_is_not_written_into_english_steps():
    problems = load_problems("builtin:arithmetic", limit=6, difficulty=(3, 4))
    out = journey(problems, SimEngine(error_rate=0.0), JourneyConfig(samples=1, language="zh"), CTX)
    journeys = out.traces.filter(method="journey")
    assert set(journeys["generator_reason"]) == {"steps_not_in_language"}
