"""The sim's behaviours for search trees: typos, wordings, code steps, the answer paragraph."""

from __future__ import annotations

import math

from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.generators.prompts import CODE_MARKER, build_code_messages, build_messages
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.sandbox import run_python
from reasonfactory.generators.verify.steps import code_of
from test_tree import false_equations


def _sample(engine, problems, n=10, build=build_messages, **kw):
    requests = [
        GenRequest(messages=build(p.question), n=n, seed=i, **kw) for i, p in enumerate(problems)
    ]
    return engine.generate(requests)


def test_typos_write_a_wrong_result_but_carry_the_right_one():
    problems = make_problems("arithmetic", 200, seed=2, difficulty=(5, 5))
    out = _sample(SimEngine(error_rate=0.0, typo_rate=0.2), problems)
    texts = [c.text for comps in out for c in comps]
    # no carried slip: every answer is right, yet some traces hold a false equation
    assert all(
        extract_boxed(c.text) == p.gold
        for p, comps in zip(problems, out, strict=True)
        for c in comps
    )
    lucky = sum(1 for t in texts if false_equations(t))
    expected = 1 - 0.8**5
    sigma = math.sqrt(expected * (1 - expected) / len(texts))
    assert abs(lucky / len(texts) - expected) < 4 * sigma


def test_typo_rate_zero_and_one_wording_change_nothing():
    problems = make_problems("arithmetic", 20, seed=0, difficulty=(4, 4))
    plain = _sample(SimEngine(error_rate=0.2), problems, logprobs=True)
    same = _sample(SimEngine(error_rate=0.2, typo_rate=0.0, wordings=1), problems, logprobs=True)
    assert plain == same


def test_wordings_vary_the_text_not_the_values():
    problems = make_problems("arithmetic", 30, seed=1, difficulty=(4, 4))
    out = _sample(SimEngine(error_rate=0.0, wordings=5), problems)
    for p, comps in zip(problems, out, strict=True):
        assert {extract_boxed(c.text) for c in comps} == {p.gold}
        assert len({c.text for c in comps}) > 1
        assert all(false_equations(c.text) == [] for c in comps)


def test_code_steps_compute_the_written_values_unless_they_slipped():
    problems = make_problems("arithmetic", 4, seed=3, difficulty=(3, 3))
    [good] = _sample(SimEngine(error_rate=0.0), problems[:1], n=1, build=build_code_messages)[0]
    steps = good.text.removeprefix("<think>\n").split("\n</think>")[0].split("\n\n")
    assert all(CODE_MARKER in s for s in steps)
    code = "\n".join(code_of(s) for s in steps)
    printed = run_python(code).stdout.split()
    written = [s.split("= ")[1].split(".")[0] for s in steps]
    assert [str(int(float(v))) for v in printed] == written

    slips = _sample(SimEngine(error_rate=0.9), problems, n=20, build=build_code_messages)
    bugs = [c.text for comps in slips for c in comps if "S1 " in c.text or "S2 " in c.text]
    assert bugs  # some slipped steps come with code naming an undefined variable


def test_a_closed_thought_gets_only_the_answer_paragraph():
    [p] = make_problems("arithmetic", 1, seed=4, difficulty=(2, 2))
    [[full]] = _sample(SimEngine(error_rate=0.0), [p], n=1)
    thought = full.text.split("</think>")[0] + "</think>\n\n"
    req = GenRequest(messages=build_messages(p.question), prefix=thought, n=1, seed=0)
    [[answer]] = SimEngine(error_rate=0.5).generate([req])
    assert answer.text == f"The answer is \\boxed{{{p.gold}}}."
