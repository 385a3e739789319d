"""The sim on `builtin:code`: it writes, in the reply shape a model is asked for, the right
program or a wrong, crashing, looping or hostile one at the configured rates, seeded; each
kind gets its verdict from the real verifier; an unset `code` leaves sim run ids as they were.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from reasonfactory.generators.engines import SimEngineConfig, make_engine
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.sim import sim_solves
from reasonfactory.generators.identity import output_settings
from reasonfactory.generators.problems.code_family import TASKS, code_program
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import messages_for
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many
from reasonfactory.generators.verify.sandbox_layers import weak_layers
from reasonfactory.warehouse.errors import UserError

KINDS = ("right", "wrong", "crashing", "looping", "hostile")
RATES = {"wrong": 0.3, "crashing": 0.1, "looping": 0.1, "hostile": 0.1}


def _kind(question: str, program: str) -> str:
    return next(k for k in KINDS if code_program(question, k) == program)


def test_programs_come_at_the_configured_rates_and_the_same_seed_writes_the_same():
    problems = load_problems("builtin:code", limit=20)
    engine = make_engine(SimEngineConfig(code=RATES))
    requests = [  # a seed per problem, as self_output gives (request_seed)
        GenRequest(messages=messages_for(p), n=100, seed=i, temperature=0.8)
        for i, p in enumerate(problems.iter_rows(named=True))
    ]
    out = engine.generate(requests)
    counts: Counter = Counter()
    for problem, completions in zip(problems.iter_rows(named=True), out, strict=True):
        for c in completions:
            assert c.text.startswith("<think>\n") and "</think>\n\n```python\n" in c.text
            program = c.text.split("```python\n", 1)[1].removesuffix("```")
            counts[_kind(problem["question"], program)] += 1
    n = sum(counts.values())
    for kind, rate in RATES.items():
        assert abs(counts[kind] / n - rate) < 0.03, (kind, counts)
    assert abs(counts["right"] / n - 0.4) < 0.03
    assert [c.text for c in engine.generate(requests[:1])[0]] == [c.text for c in out[0]]


def test_each_kind_of_program_gets_its_verdict():
    if weak_layers():
        message = f"this machine's sandbox lacks {weak_layers()}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs bubblewrap)")
        pytest.skip(message)
    problems = load_problems("builtin:code", limit=len(TASKS) * 3, seed=1)
    items, kinds = [], []
    for p in problems.iter_rows(named=True):
        tests = read_tests(json.loads(p["meta"])["code"])
        for kind in KINDS:
            items.append((tests, code_program(p["question"], kind)))
            kinds.append(kind)
    assert {json.loads(m)["task"] for m in problems["meta"]} == set(TASKS)
    # 2 s per test: a right program must not time out on a loaded machine
    verdicts = verify_many(items, CodeOptions(extract="whole", timeout_s=2.0, workers=2))
    expected = {
        "right": "passed",
        "wrong": "failed_tests",
        "crashing": "runtime_error",
        "looping": "timeout",
        "hostile": "runtime_error",
    }
    got = [(k, v.verdict, v.detail) for k, v in zip(kinds, verdicts, strict=True)]
    assert [v for _, v, _ in got] == [expected[k] for k in kinds], got


def test_the_code_setting_is_in_a_run_s_identity_only_when_set():
    assert "code" not in output_settings(SimEngineConfig())  # old sim runs keep their ids
    assert output_settings(SimEngineConfig(code={"wrong": 0.5}))["code"]["wrong"] == 0.5
    with pytest.raises(ValueError, match="less than 1"):
        SimEngineConfig(code={"wrong": 0.5, "crashing": 0.5})


def test_the_sim_knows_its_code_questions_and_no_others():
    question = load_problems("builtin:code", limit=1)["question"][0]
    assert sim_solves(question) and sim_solves("Compute 2 + 3.")
    assert not sim_solves("Write a function that sorts a list.")


def test_a_recipe_s_default_of_100_problems_fits_the_family():
    # It made 59 distinct questions before, so `source: builtin:code` with no limit failed.
    assert load_problems("builtin:code").height == 100
    with pytest.raises(UserError, match=r"cannot make 200 distinct problems \(it made 132\)"):
        load_problems("builtin:code", limit=200)  # the CLI prints it in one line
