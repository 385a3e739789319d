"""The sim engine: seeded, speaks the step protocol, slips at the set rate and carries slips."""

from __future__ import annotations

import math

import pytest
from reasonfactory.generators.engines.base import EngineError, GenRequest
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.generators.prompts import build_messages, parse_completion
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.steps import check_equations


def _requests(problems, n, seed=0, **kw):
    return [
        GenRequest(messages=build_messages(p.question), n=n, seed=seed * 1000 + i, **kw)
        for i, p in enumerate(problems)
    ]


@pytest.mark.parametrize("error_rate,steps", [(0.1, 3), (0.2, 5), (0.3, 4)])
def test_correct_rate_follows_one_minus_e_to_the_s(error_rate, steps):
    problems = make_problems("arithmetic", 200, seed=steps, difficulty=(steps, steps))
    out = SimEngine(error_rate=error_rate).generate(_requests(problems, n=20))
    hits = sum(
        extract_boxed(c.text) == p.gold
        for p, comps in zip(problems, out, strict=True)
        for c in comps
    )
    total = 200 * 20
    expected = (1 - error_rate) ** steps
    sigma = math.sqrt(expected * (1 - expected) / total)
    assert abs(hits / total - expected) < 4 * sigma, (hits / total, expected)


def test_zero_error_rate_is_always_right_and_well_formed():
    problems = make_problems("linear", 50, seed=1) + make_problems("arithmetic", 50, seed=1)
    out = SimEngine(error_rate=0.0).generate(_requests(problems, n=2))
    for p, comps in zip(problems, out, strict=True):
        for c in comps:
            parsed = parse_completion(c.text)
            assert parsed.think_closed and parsed.predicted == p.gold
            assert c.finish_reason == "stop"


def test_same_seed_same_text_other_seed_differs():
    problems = make_problems("arithmetic", 20, seed=0, difficulty=(5, 5))
    eng = SimEngine(error_rate=0.3)
    a = eng.generate(_requests(problems, n=4, seed=1))
    b = eng.generate(_requests(problems, n=4, seed=1))
    c = eng.generate(_requests(problems, n=4, seed=2))
    assert a == b
    assert a != c


def test_a_slip_is_carried_into_later_steps():
    [p] = make_problems("arithmetic", 1, seed=3, difficulty=(4, 4))
    eng = SimEngine(error_rate=0.0)
    [[good]] = eng.generate(_requests([p], n=1))
    first, *_ = good.text.removeprefix("<think>\n").split("\n\n")
    lhs, value = first.rsplit(" = ", 1)
    wrong_first = f"{lhs} = {int(value.rstrip('.')) + 7}."
    prefix = f"<think>\n{wrong_first}\n\n"
    [[cont]] = eng.generate(
        [GenRequest(messages=build_messages(p.question), prefix=prefix, n=1, seed=0)]
    )
    # The continuation computes from the written (wrong) value, so the final answer is off.
    assert cont.text.startswith("Step 2:")
    assert str(int(value.rstrip(".")) + 7) in cont.text.split("\n\n")[0]
    assert extract_boxed(cont.text) != p.gold


def test_stop_string_cuts_one_step_and_max_tokens_truncates():
    [p] = make_problems("arithmetic", 1, seed=4, difficulty=(5, 5))
    eng = SimEngine(error_rate=0.0)
    [[step]] = eng.generate(
        [GenRequest(messages=build_messages(p.question), prefix="<think>\n", stop=("\n\n",))]
    )
    assert step.text.startswith("Step 1:") and "\n\n" not in step.text
    assert step.stop_reason == "\n\n"
    [[cut]] = eng.generate([GenRequest(messages=build_messages(p.question), max_tokens=10)])
    assert cut.finish_reason == "length" and cut.n_tokens == 10
    assert "</think>" not in cut.text


def test_logprobs_reflect_the_choices_made():
    problems = make_problems("arithmetic", 30, seed=5, difficulty=(3, 3))
    eng = SimEngine(error_rate=0.2)
    out = eng.generate(_requests(problems, n=4, logprobs=True))
    for p, comps in zip(problems, out, strict=True):
        for c in comps:
            right = extract_boxed(c.text) == p.gold
            if right:  # three correct steps
                assert c.cumulative_logprob == pytest.approx(3 * math.log(0.8))
            else:
                assert c.cumulative_logprob < 3 * math.log(0.8)


def test_problem_outside_its_families_is_a_clear_error():
    eng = SimEngine()
    req = GenRequest(messages=build_messages("What is the capital of France?"))
    with pytest.raises(EngineError, match="built-in problem families"):
        eng.generate([req])


def test_chinese_steps_are_read_back_and_checked_like_english_ones():
    eng = SimEngine(error_rate=0.0, language="zh")
    messages = build_messages("Compute ((17 + 5) * 3) - 8.")
    [full] = eng.generate([GenRequest(messages=messages, seed=3)])[0]
    thought = full.text.split("</think>")[0].removeprefix("<think>\n")
    steps = thought.split("\n\n")
    assert [s[:6] for s in steps] == ["第 1 步：", "第 2 步：", "第 3 步："]
    assert all(check_equations(s).ok is True for s in steps)
    assert full.text.endswith("答案是 \\boxed{58}。")
    # a prefix in Chinese is continued from its written results, as in English
    [rest] = eng.generate([GenRequest(messages=messages, prefix=steps[0] + "\n\n", seed=3)])[0]
    assert rest.text.startswith("第 2 步：计算 22 * 3 = 66。")


def test_a_problem_is_read_with_operator_precedence():
    # the sim reads `Compute ...` with the one arithmetic reader: `2 + 3 * 4` is 14 (it
    # once applied the operations left to right and answered 20), one step per operation
    [[c]] = SimEngine(error_rate=0.0).generate(
        [GenRequest(messages=build_messages("Compute 2 + 3 * 4 - (6 - 1)."), seed=0)]
    )
    assert extract_boxed(c.text) == "9"
    assert "3 * 4 = 12." in c.text and "2 + 12 = 14." in c.text and "6 - 1 = 5." in c.text
    assert check_equations(c.text.split("</think>")[0]).ok is True
