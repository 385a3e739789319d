"""`revise` (generators/methods/revise.py): sequential revision with external feedback.

On the sim at error_rate 0.3, attempts with a slip are told their failing claim and revised
(the sim's documented rule: a revision request naming `Step k is wrong` gets steps 1..k
written right, the later steps at the usual rates): each revision's first failing step lies
after the one it was told about, so every problem is fixed within its step count, every
trace keeps its chain, and `form: chain` writes the attempts and the feedback as one thought.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.revise import ReviseConfig, feedback_for, revise
from reasonfactory.generators.problems.sources import load_problems


def _run(**settings):
    problems = load_problems("builtin:arithmetic", limit=30, difficulty=(3, 4))
    return revise(problems, SimEngine(error_rate=0.3), ReviseConfig(**settings),
                  RunContext("run", "fp", "sim")).traces  # fmt: skip


def _named(feedback: str | None) -> int | None:
    return int(feedback.split()[1]) if feedback and feedback.startswith("Step ") else None


def test_revise_fixes_sim_mistakes_when_told_the_failing_claim_and_records_the_chain():
    traces = _run(attempts=6)
    assert traces.height == 30
    metas = [json.loads(m) for m in traces["meta"]]
    first_right = sum(m["chain"][0]["feedback"] is None for m in metas)
    final_right = (traces["predicted"] == traces["gold"]).sum()
    # The sim reads the claim: the named step and those before it come back right, so a
    # problem of s <= 4 steps is fixed within s + 1 attempts (a fresh sample would be right
    # only with p = 0.7 ** s and leave some unfixed after six).
    assert first_right < 18 and final_right == 30, (first_right, final_right)
    fixed = [m for m in metas if m["fixed"]]
    assert len(fixed) == 30 - first_right
    for m in fixed:
        told = m["chain"][0]["feedback"]
        assert told.startswith("Step ") and " is wrong: " in told and ", not " in told
        assert all(a["feedback"] for a in m["chain"][:-1]) and m["chain"][-1]["feedback"] is None
        named = [_named(a["feedback"]) for a in m["chain"]]
        for before, after in zip(named, named[1:], strict=False):
            assert after is None or after > before, m["chain"]  # the told step stays fixed
    # The trace is the last attempt (form: final), its tokens every attempt's.
    for row, m in zip(traces.iter_rows(named=True), metas, strict=True):
        if m["fixed"]:
            assert row["thought"] in m["chain"][-1]["text"]
            assert row["n_tokens"] == sum(a["n_tokens"] for a in m["chain"])


def test_revise_chain_form_holds_every_attempt_and_the_feedback():
    traces = _run(attempts=6, form="chain")
    row = next(r for r in traces.iter_rows(named=True) if json.loads(r["meta"])["fixed"])
    chain = json.loads(row["meta"])["chain"]
    assert row["thought"].count("Step 1:") == len(chain)
    assert f"Wait: {chain[0]['feedback']} Let me redo it." in row["thought"]
    assert row["predicted"] == row["gold"]


def test_feedback_names_a_wrong_answer_when_every_step_holds():
    text = "<think>\nStep 1: 2 + 2 = 4.\n</think>\n\nThe answer is \\boxed{4}."
    assert feedback_for(text, "5") == "The final answer 4 is wrong."
    assert feedback_for("no answer", None) == "The solution states no final answer in \\boxed{}."
    assert pl.Series([feedback_for(text, None)]).is_null().all()


@pytest.mark.slow
def test_revise_runs_through_the_flow(prefect_api, tmp_path):
    recipe = {
        "name": "rev",
        "problems": {"source": "builtin:arithmetic", "limit": 10, "difficulty": [3, 4]},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "revise", "attempts": 4, "form": "chain"},
    }
    summary = run_recipe(parse_recipe(recipe), str(tmp_path / "wh.duckdb"))
    assert summary["generated"] == 10 and summary["kept"] >= 7, summary
    assert summary["engine_calls"] <= 4  # one call per round for every problem still revising
