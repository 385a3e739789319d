"""journey: injected errors into sim traces, and linearised hand-built trees (node contract)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import polars as pl
import pytest
from journey_checks import check_journey, holds
from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec
from reasonfactory.generators.base import Generated, RunContext, StrictModel
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.methods.journey.from_tree import linearise_tree
from reasonfactory.generators.methods.journey.inject import ERROR_TYPES, inject_errors
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.ids import digest
from reasonfactory.warehouse.schema import NODES

CTX = RunContext("r", "fp", "sim")
FILTERS = [parse_filter_spec("format"), parse_filter_spec("answer")]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _run(problems, **config) -> pl.DataFrame:
    out = journey(problems, SimEngine(error_rate=0.2), JourneyConfig(**config), CTX)
    return apply_filters(out.traces, FILTERS)


@pytest.fixture(scope="module")
def mixed_problems():
    return pl.concat(
        [
            load_problems("builtin:arithmetic", limit=40, difficulty=(2, 6)),
            load_problems("builtin:linear", limit=40),
        ]
    )


# -- from: inject --------------------------------------------------------------------------


def test_every_kept_injected_journey_corrects_each_error(mixed_problems):
    out = _run(mixed_problems, samples=4, detours=2)
    sources = {r["trace_id"]: r for r in out.filter(method="self_output").iter_rows(named=True)}
    kept = out.filter(method="journey", status="kept")
    assert kept.height >= 60
    types, per_trace = Counter(), Counter()
    for row in kept.iter_rows(named=True):
        source = sources[json.loads(row["meta"])["journey"]["source_trace_id"]]
        assert source["status"] == "kept"  # only correct bases get errors injected
        errors = check_journey(row, plain_thought=source["thought"])
        assert row["response"] == source["response"]
        types.update(e["type"] for e in errors)
        per_trace[len(errors)] += 1
    # a sim step is one `a op b = c`: a dropped term needs three terms (see
    # test_journey_plausible.py, on real GSM8K lines)
    assert set(types) == set(ERROR_TYPES) - {"dropped_term"}, types
    assert per_trace[2] > per_trace[1]  # two detours wherever two steps have claims


def test_problems_without_a_correct_base_get_a_rejected_row(mixed_problems):
    out = _run(mixed_problems.head(10), samples=1, detours=1, keep_sources=False)
    assert set(out["method"]) == {"journey"}
    assert out.height == 10  # one row per problem, kept or saying why not
    rejected = out.filter(status="rejected")
    assert set(rejected["reject_reason"]) <= {"no_correct_base"}
    for row in rejected.iter_rows(named=True):
        assert row["thought"] == "" and json.loads(row["meta"])["journey"]["errors"] == []


def test_error_types_and_language_are_honoured(mixed_problems):
    config = JourneyConfig(samples=2, error_types=["sign_error"], language="zh")
    made = journey(mixed_problems.head(30), SimEngine(error_rate=0.2, language="zh"), config, CTX)
    out = apply_filters(made.traces, FILTERS)
    kept = out.filter(method="journey", status="kept")
    assert kept.height > 10
    for row in kept.iter_rows(named=True):
        errors = check_journey(row)
        assert {e["type"] for e in errors} == {"sign_error"}
        for e in errors:
            assert CJK.search(row["thought"][e["feedback_start"] : e["backtrack_end"]])


def test_feedback_phrases_vary(mixed_problems):
    out = _run(mixed_problems, samples=2).filter(method="journey", status="kept")
    openings = Counter()
    for row in out.iter_rows(named=True):
        for e in json.loads(row["meta"])["journey"]["errors"]:
            openings[row["thought"][e["feedback_start"] : e["feedback_start"] + 12]] += 1
    assert len(openings) >= 4
    assert max(openings.values()) < 0.5 * sum(openings.values())


def test_same_seed_same_journeys(mixed_problems):
    a = _run(mixed_problems.head(10), samples=2).drop("created_at")
    b = _run(mixed_problems.head(10), samples=2).drop("created_at")
    assert a.equals(b)


@pytest.mark.parametrize("kind", ERROR_TYPES)
def test_each_perturbation_writes_a_false_claim(kind):
    thought = (
        "Step 1: 10 + 5 + 7 = 22.\n\nStep 2: 22 * 3 = 66.\n\nStep 3: 66 - 8 = 58.\n\n"
        "Step 4: 58 / 2 = 29."
    )
    for seed in range(20):
        made = inject_errors(
            thought,
            detours=1,
            rng=random.Random(seed),
            types=(kind,),
            question="Compute (((10 + 5 + 7) * 3) - 8) / 2.",
        )
        [e] = made.errors
        assert e["type"] == kind and not holds(e["wrong_claim"]) and holds(e["corrected_claim"])
        wrong_step = made.thought.split("\n\n")[e["error_para"]]
        assert e["written"] in wrong_step
        if kind == "wrong_operand":
            assert e["why_copied"] != e["why_original"] and e["written"] != e["wrong_claim"]
        if kind == "dropped_term":  # one of three terms left out, not `a op b = a`
            assert e["written"].startswith("10 + 5 + 7 = ") and e["why_dropped"] in "10 5 7"


def test_a_trace_without_claims_gets_no_detour():
    assert inject_errors("I think the answer is 4.", detours=1, rng=random.Random(0)) is None


# -- from: tree (hand-built trees in the node contract) ------------------------------------


def _node(
    nid,
    text,
    *,
    terminal=False,
    correct=None,
    q=None,
    check=None,
    answer=None,
    tree="tr_a",
    problem="p_a",
):
    return {
        "tree_id": tree,
        "node_id": nid,
        "parent_id": nid.rsplit(".", 1)[0] if "." in nid else None,
        "problem_id": problem,
        "run_id": "r",
        "depth": nid.count("."),
        "text": text,
        "is_terminal": terminal,
        "correct": correct,
        "visits": 3,
        "q_value": q,
        "mc_value": None,
        "meta": json.dumps({"answer": answer, "check": check, "reward": None}),
    }


def _failed(claim, expected, kind="equations"):
    return {
        "kind": kind,
        "ok": False,
        "claim": claim,
        "expected": expected,
        "detail": f"{claim.split('=')[0].strip()} evaluates to {expected}",
    }


def tree_a(tree="tr_a", problem="p_a") -> pl.DataFrame:
    """Compute (17 * 3) + 8 = 59: two correct paths (the 0.1 path has the higher Q), wrong
    branches caught by checks at two depths, one two levels deep, and a wrong answer whose
    steps are all true arithmetic (no claim to name, so never used as a detour)."""
    n = {"tree": tree, "problem": problem}
    rows = [
        _node("0", "", **n),
        _node("0.1", "Step 1: 17 * 3 = 51.", q=0.8, **n),
        _node("0.1.1", "Step 2: 51 + 8 = 59.", q=0.9, **n),
        _node(
            "0.1.1.1",
            "The answer is \\boxed{59}.",
            terminal=True,
            correct=True,
            q=1.0,
            answer="59",
            **n,
        ),
        _node(
            "0.1.2",
            "Step 2: 51 + 8 = 58.",
            terminal=True,
            correct=False,
            q=-1.0,
            check=_failed("51 + 8 = 58", "59"),
            **n,
        ),
        _node("0.1.3", "Step 2: 51 * 1 = 51.", q=-0.5, **n),
        _node(
            "0.1.3.1",
            "Step 3: 51 + 8 = 60.",
            terminal=True,
            correct=False,
            q=-1.0,
            check=_failed("51 + 8 = 60", "59"),
            **n,
        ),
        _node(
            "0.2",
            "Step 1: 17 * 3 = 41.",
            terminal=True,
            correct=False,
            q=-1.0,
            check=_failed("17 * 3 = 41", "51"),
            **n,
        ),
        _node("0.3", "Step 1: 17 + 3 = 20.", q=-1.0, **n),
        _node("0.3.1", "Step 2: 20 * 8 = 160.", q=-1.0, **n),
        _node(
            "0.3.1.1",
            "The answer is \\boxed{160}.",
            terminal=True,
            correct=False,
            q=-1.0,
            answer="160",
            **n,
        ),
        _node("0.4", "Step 1: 3 * 17 = 51.", q=0.1, **n),
        _node("0.4.1", "Step 2: 8 + 51 = 59.", q=0.1, **n),
        _node(
            "0.4.1.1",
            "The answer is \\boxed{59}.",
            terminal=True,
            correct=True,
            q=0.1,
            answer="59",
            **n,
        ),
    ]
    return NODES.conform(pl.DataFrame(rows, schema=NODES.polars_schema))


SHORTCUT = ("0", "0.1", "0.1.1", "0.1.1.1")
SHORTCUT_THOUGHT = "Step 1: 17 * 3 = 51.\n\nStep 2: 51 + 8 = 59."


def _as_row(out, gold="59") -> dict:
    return {
        "thought": out.journey.thought,
        "predicted": out.predicted,
        "gold": gold,
        "meta": json.dumps(
            {"journey": {"n_detours": len(out.journey.errors), "errors": list(out.journey.errors)}}
        ),
    }


def test_tree_linearisation_follows_the_shortcut_and_corrects_each_branch():
    seen_branches = Counter()
    for seed in range(30):
        out = linearise_tree(tree_a(), detours=2, rng=random.Random(seed))
        assert out.shortcut == SHORTCUT and out.reason is None
        assert out.response == "The answer is \\boxed{59}." and out.predicted == "59"
        errors = check_journey(_as_row(out), plain_thought=SHORTCUT_THOUGHT)
        assert [e["branch_node"] for e in errors] == ["0", "0.1"]  # both branch points
        for e in errors:
            assert e["kind"] == "branch" and e["type"] == "equations"
            seen_branches[tuple(e["wrong_nodes"])] += 1
        assert "160" not in out.journey.thought and "3 * 17" not in out.journey.thought
    # A faulty step right at the branch point is preferred to a deeper one (going back then
    # returns to the faulty step itself); the deeper branch is used when it is the only one.
    assert set(seen_branches) == {("0.2",), ("0.1.2",)}


def test_one_detour_goes_back_to_its_branch_point():
    points = Counter()
    for seed in range(12):
        out = linearise_tree(tree_a(), detours=1, rng=random.Random(seed))
        [e] = out.journey.errors
        back = out.journey.thought[e["backtrack_start"] : e["backtrack_end"]].lower()
        points[e["branch_node"]] += 1
        faulty = out.journey.thought[e["error_start"] : e["error_end"]].split(":")[0].lower()
        assert faulty in back and "start" not in back, back  # back to the faulty step itself
    assert set(points) == {"0", "0.1"}


def test_a_deeper_wrong_branch_names_its_faulty_step_and_goes_back_to_the_branch_point():
    only_deep = tree_a().filter(~pl.col("node_id").is_in(["0.1.2", "0.2"]))
    for seed in range(6):
        out = linearise_tree(only_deep, detours=1, rng=random.Random(seed))
        [e] = out.journey.errors
        assert e["wrong_nodes"] == ["0.1.3", "0.1.3.1"]
        feedback = out.journey.thought[e["feedback_start"] : e["feedback_end"]]
        back = out.journey.thought[e["backtrack_start"] : e["backtrack_end"]].lower()
        assert "step 3" in feedback, feedback  # the step that was wrong, noticed late
        assert "step 1" in back and "start" not in back, back  # back to after step 1


def test_tree_without_a_correct_answer_or_without_wrong_branches():
    no_correct = tree_a().filter(~pl.col("node_id").is_in(["0.1.1.1", "0.4.1.1"]))
    assert linearise_tree(no_correct, rng=random.Random(0)).reason == "no_correct_path"
    only_good = tree_a().filter(pl.col("node_id").is_in(list(SHORTCUT)))
    out = linearise_tree(only_good, rng=random.Random(0))
    assert out.reason == "no_detour" and out.journey.thought == SHORTCUT_THOUGHT


def test_a_check_whose_claim_is_not_false_is_not_used():
    bogus = tree_a().with_columns(
        meta=pl.when(pl.col("node_id") == "0.2")
        .then(pl.lit(json.dumps({"check": _failed("17 * 3 = 51", "51")})))
        .otherwise(pl.col("meta")),
        text=pl.when(pl.col("node_id") == "0.2")
        .then(pl.lit("Step 1: 17 * 3 = 51, so we need more."))
        .otherwise(pl.col("text")),
    )
    for seed in range(10):
        out = linearise_tree(bogus, detours=2, rng=random.Random(seed))
        assert [e["branch_node"] for e in out.journey.errors] == ["0.1"]


def test_tree_journey_in_chinese():
    out = linearise_tree(tree_a(), detours=1, language="zh", rng=random.Random(0))
    [e] = out.journey.errors
    assert CJK.search(out.journey.thought[e["feedback_start"] : e["backtrack_end"]])
    check_journey(_as_row(out), plain_thought=SHORTCUT_THOUGHT)


class FakeTreeConfig(StrictModel):
    method: str = "tree"
    rollouts: int = 4


def _fake_tree(problems, engine, config, ctx):
    """Stands in for the tree method: one hand-built tree per problem, in the contract."""
    trees = [
        tree_a(tree="tr_" + digest(ctx.fingerprint, pid), problem=pid)
        for pid in problems["problem_id"]
    ]
    _fake_tree.configs.append(config)
    return Generated(traces=pl.DataFrame(), nodes=pl.concat(trees))


_fake_tree.configs = []


def test_from_tree_calls_the_tree_method(monkeypatch):
    import reasonfactory.generators.methods.journey as journey_module

    monkeypatch.setattr(journey_module, "grow_trees", _fake_tree)
    problems = pl.DataFrame(
        {"problem_id": ["p1", "p2"], "question": ["Compute 17 * 3 + 8."] * 2, "gold": ["59", "59"]}
    )
    config = JourneyConfig.model_validate(
        {"from": "tree", "detours": 2, "per_problem": 3, "tree": {"rollouts": 8}}
    )
    out = journey(problems, None, config, CTX)
    assert _fake_tree.configs[-1].rollouts == 8
    assert out.nodes is not None and out.nodes.height == 28  # the tree is stored too
    traces = apply_filters(out.traces, FILTERS)
    kept = traces.filter(method="journey", status="kept")
    assert kept.height >= 2 and set(kept["problem_id"]) == {"p1", "p2"}
    for row in kept.iter_rows(named=True):
        check_journey(row, plain_thought=SHORTCUT_THOUGHT)
        source = json.loads(row["meta"])["journey"]
        assert source["from"] == "tree" and source["shortcut"] == list(SHORTCUT)
        assert source["tree_id"] == "tr_" + digest(CTX.fingerprint, row["problem_id"])
    with pytest.raises(ValueError, match="tree settings: rolouts"):
        JourneyConfig.model_validate({"from": "tree", "tree": {"rolouts": 8}})
