"""The `tree` generator: batched rounds, verification, the node contract, traces, determinism.

The sim engine serves most tests; `ScriptedEngine` (hand-written, below) plays a model whose
steps are given, for the edge cases of the step protocol and for planted hostile code steps.
`false_equations` is this test's own evaluator of `a op b = c` claims, independent of
`reasonfactory.generators.verify.steps`.
"""

from __future__ import annotations

import json
import re
import tempfile
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.base import Completion, GenRequest, SampleFeed
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.tree import TreeConfig, split_step, tree
from reasonfactory.generators.problems.sources import load_problems

CTX = RunContext("run", "fp", "sim")
ANSWER_TEXT = re.compile(r"The answer is \\boxed\{.+\}\.")
_EQ = re.compile(r"(\(?-?\d+(?:/\d+)?\)?) ([-+*/]) (\(?-?\d+(?:/\d+)?\)?) = (\(?-?\d+(?:/\d+)?\)?)")


def false_equations(text: str) -> list[str]:
    """Every `a op b = c` in the text whose arithmetic is wrong (exact fractions)."""
    bad = []
    for a, op, b, c in _EQ.findall(text):
        x, y, z = (Fraction(v.strip("()")) for v in (a, b, c))
        if op == "/" and y == 0:
            bad.append(f"{a} {op} {b} = {c}")
            continue
        value = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else None}[op]
        if value != z:
            bad.append(f"{a} {op} {b} = {c}")
    return bad


class RecordingEngine:
    """Wraps an engine and records every call's requests."""

    def __init__(self, engine):
        self.engine, self.model, self.calls = engine, engine.model, []

    def generate(self, requests, on_sample=None):
        self.calls.append(list(requests))
        return self.engine.generate(requests, on_sample=on_sample)


def _problems(n=12, ops=5, seed=0, family="arithmetic"):
    return load_problems(f"builtin:{family}", limit=n, difficulty=(ops, ops), seed=seed)


def _run(problems, config=None, engine=None):
    engine = engine or SimEngine(error_rate=0.3, typo_rate=0.1, wordings=3)
    return tree(problems, engine, config or TreeConfig(rollouts=8), CTX)


def _meta(frame: pl.DataFrame) -> list[dict]:
    return [json.loads(m) for m in frame["meta"]]


def test_same_seed_same_nodes_and_traces_other_seed_differs():
    problems = _problems(8)
    a, b = _run(problems), _run(problems)
    c = _run(problems, TreeConfig(rollouts=8, seed=1))
    assert a.nodes.equals(b.nodes)
    assert a.traces.drop("created_at").equals(b.traces.drop("created_at"))
    assert not a.nodes.equals(c.nodes)


def test_a_tree_does_not_depend_on_the_batch_it_was_searched_in():
    problems = _problems(10)
    whole = _run(problems).nodes
    halves = pl.concat([_run(problems.slice(0, 4)).nodes, _run(problems.slice(4)).nodes])
    key = ["tree_id", "node_id"]
    assert whole.sort(key).equals(halves.sort(key))


def test_one_engine_call_per_round_holds_every_tree():
    large = RecordingEngine(SimEngine(0.3))
    problems = _problems(32)
    out = _run(problems, engine=large)
    first = large.calls[0]
    assert len(first) == 32 and all(r.prefix == "<think>\n" and r.n == 4 for r in first)
    assert all(r.stop == ("\n\n",) for r in first)
    requests = sum(len(c) for c in large.calls)
    # calls grow with the rounds a search needs, not with the number of trees
    assert len(large.calls) <= 8 * (5 + 2) + 1
    assert requests / len(large.calls) > 8, [len(c) for c in large.calls]
    # requests = nodes expanded + answers written (what a one-request-per-node loop calls)
    kinds = pl.col("meta").str.json_path_match("$.kind")
    expanded = out.nodes.filter(kinds == "step").select("tree_id", "parent_id").unique().height
    answers = out.nodes.filter(kinds == "answer").height
    assert requests == expanded + answers


def test_kept_paths_hold_no_false_equation_and_are_ranked():
    problems = _problems(16)
    out = _run(problems, TreeConfig(rollouts=12, traces_per_problem=3))
    nodes = out.nodes
    assert nodes.filter(pl.col("correct") == False).height > 0  # noqa: E712  (slips were made)
    assert out.traces.height >= 16
    by_id = {(r["tree_id"], r["node_id"]): r for r in nodes.iter_rows(named=True)}
    for trace, meta in zip(out.traces.iter_rows(named=True), _meta(out.traces), strict=True):
        assert false_equations(trace["thought"]) == [], trace["thought"]
        path = [by_id[(meta["tree_id"], nid)] for nid in meta["path"]]
        assert [p["text"] for p in path[:-1]] == trace["thought"].split("\n\n")
        assert path[-1]["text"] == trace["response"] and path[-1]["correct"] is True
        assert trace["predicted"] == trace["gold"]
        for node in path[:-1]:
            check = json.loads(node["meta"])["check"]
            assert check["kind"] == "equations" and check["ok"]
        qs = [p["q_value"] for p in path]
        assert trace["score"] == pytest.approx(sum(qs) / len(qs))
    for _, group in out.traces.group_by("problem_id"):
        metas = _meta(group.sort("trace_id"))
        keys = sorted(((m["mean_q"], m["min_q"]) for m in metas), reverse=True)
        assert [(m["mean_q"], m["min_q"]) for m in sorted(metas, key=lambda m: m["rank"])] == keys


def test_nodes_follow_the_contract():
    out = _run(_problems(10))
    nodes = out.nodes
    assert nodes.select(["tree_id", "node_id"]).is_duplicated().sum() == 0
    for row, meta in zip(nodes.iter_rows(named=True), _meta(nodes), strict=True):
        assert {"answer", "check", "reward"} <= set(meta)
        assert row["tree_id"].startswith("tr_")
        if row["node_id"] == "0":
            assert row["parent_id"] is None and row["depth"] == 0 and row["text"] == ""
            continue
        assert row["parent_id"] == row["node_id"].rsplit(".", 1)[0]
        assert row["depth"] == row["node_id"].count(".")
        check = meta["check"]
        if meta["kind"] == "answer":
            assert row["is_terminal"] and ANSWER_TEXT.fullmatch(row["text"])
            assert meta["answer"] is not None and row["correct"] is not None
        elif check is not None and not check["ok"]:
            assert row["is_terminal"] and row["correct"] is False and meta["reward"] == -1.0
            assert check["claim"] and check["expected"]
            assert false_equations(row["text"]), row["text"]  # the named claim is really false
        else:
            assert row["text"].startswith("Step ") and row["correct"] is None
            assert false_equations(row["text"]) == []
        if row["visits"]:
            assert -1.0 <= row["q_value"] <= 1.0
        else:
            assert row["q_value"] is None
    roots = nodes.filter(pl.col("node_id") == "0")
    answers = nodes.filter(pl.col("meta").str.contains('"kind": "answer"'))
    # every answer backs its reward up to the root once; nothing else reaches it
    assert roots["visits"].sum() == answers.height


def test_without_gold_the_majority_answer_stands_in():
    problems = _problems(6).with_columns(gold=pl.lit(None, pl.String))
    out = _run(problems, TreeConfig(rollouts=8))
    assert out.traces.height > 0
    assert set(out.traces["gold_source"]) == {"majority"}
    assert (out.traces["predicted"] == out.traces["gold"]).all()
    with_gold = _run(_problems(6), TreeConfig(rollouts=8))
    assert sorted(out.traces["predicted"]) == sorted(with_gold.traces["predicted"])


def test_rollout_verification_gives_math_shepherd_labels():
    engine = RecordingEngine(SimEngine(error_rate=0.3))
    config = TreeConfig(rollouts=4, verify=["rollout"], rollout_samples=4)
    out = _run(_problems(6, ops=4), config, engine)
    steps = out.nodes.filter(pl.col("meta").str.contains('"kind": "step"'))
    labelled = steps.filter(pl.col("mc_value").is_not_null())
    assert labelled.height == steps.filter(pl.col("meta").str.contains('"rollout"')).height > 0
    assert labelled["mc_value"].is_between(0, 1).all()
    for row, meta in zip(labelled.iter_rows(named=True), _meta(labelled), strict=True):
        assert len(meta["rollout_answers"]) == 4
        failed = meta["check"]["kind"] == "rollout" and not meta["check"]["ok"]
        assert failed == (row["mc_value"] == 0)
        assert failed == (row["correct"] is False)
    # the rollouts of a round go in one call of their own, without a stop string
    rollout_calls = [c for c in engine.calls if c[0].n == 4 and not c[0].stop]
    assert rollout_calls and all(all(r.n == 4 for r in c) for c in rollout_calls)


def test_code_verification_runs_each_step_with_its_ancestors():
    engine = SimEngine(error_rate=0.3, wordings=2)
    config = TreeConfig(rollouts=4, width=3, verify=["code"], code_timeout=10)
    out = _run(_problems(3, ops=3), config, engine)
    steps = out.nodes.filter(pl.col("meta").str.contains('"kind": "step"'))
    assert steps["text"].str.contains("```python").all()
    metas = _meta(steps)
    failed = [m["check"] for m in metas if m["check"] and not m["check"]["ok"]]
    passed = [m["check"] for m in metas if m["check"] and m["check"]["ok"]]
    assert failed and passed and {c["kind"] for c in failed + passed} == {"code"}
    assert any("NameError" in c["detail"] for c in failed)  # the sim's buggy code
    assert any(c["claim"] and c["expected"] for c in failed)  # printed value contradicts it
    assert out.traces.height > 0
    for thought in out.traces["thought"]:
        assert false_equations(thought) == []


# -- a scripted model: the step protocol's edge cases and hostile code -----------------------

QUESTION = "Compute (2 + 3) * 4."
GOOD = [
    "Step 1: 2 + 3 = 5.\n```python\ns1 = 2 + 3\nprint(s1)\n```",
    "Step 2: 5 * 4 = 20.\n```python\ns2 = s1 * 4\nprint(s2)\n```",
]
ANSWER = "The answer is \\boxed{20}."


class ScriptedEngine:
    """Answers by step number: `script[k]` lists the candidates for step k+1 (cycled to n)."""

    model = "scripted"

    def __init__(self, script: list[list[str]], closing: str = "\n</think>"):
        self.script, self.closing = script, closing

    def generate(self, requests: list[GenRequest], on_sample=None) -> list[list[Completion]]:
        out = [self._one(r) for r in requests]
        SampleFeed(on_sample).send_all(out)
        return out

    def _one(self, req: GenRequest) -> list[Completion]:
        if "</think>" in req.prefix:
            return [Completion(ANSWER, n_tokens=5)] * req.n
        k = req.prefix.count("Step ")
        options = self.script[k] if k < len(self.script) else ["</think>"]
        picked = [options[i % len(options)] for i in range(req.n)]
        if k == len(self.script) - 1:
            picked = [p + self.closing for p in picked]
        return [Completion(p, n_tokens=len(p.split())) for p in picked]


def _scripted(script, config, closing="\n</think>"):
    problems = pl.DataFrame(
        {"problem_id": ["p_x"], "question": [QUESTION], "gold": ["20"], "source": ["t"]}
    )
    return tree(problems, ScriptedEngine(script, closing), config, CTX)


def test_split_step_reads_the_protocol():
    assert split_step("Step 1: 2 + 3 = 5.") == ("Step 1: 2 + 3 = 5.", False, None)
    assert split_step("Step 2: 5 * 4 = 20.\n</think>") == ("Step 2: 5 * 4 = 20.", True, None)
    assert split_step("</think>\n\nThe answer is \\boxed{20}.") == ("", True, ANSWER)
    assert split_step("Step 2: so \\boxed{20}")[1] is True


def test_identical_samples_merge_and_a_bare_close_gets_its_answer():
    config = TreeConfig(rollouts=4, width=4, verify=["equations"])
    out = _scripted([[GOOD[0]], [GOOD[1]]], config, closing="")  # "</think>" comes alone
    nodes = {
        r["node_id"]: (r, m)
        for r, m in zip(out.nodes.iter_rows(named=True), _meta(out.nodes), strict=True)
    }
    assert nodes["0.1"][1]["samples"] == 4  # four identical first steps: one child
    answer = next(r for r, m in nodes.values() if m["kind"] == "answer")
    assert answer["text"] == ANSWER and answer["correct"] is True
    assert out.traces["thought"].to_list() == ["\n\n".join(GOOD)]
    assert out.traces["response"].to_list() == [ANSWER]


HOSTILE = {
    "infinite loop": "Step 1: 2 + 3 = 5.\n```python\nwhile True:\n    pass\n```",
    "fork bomb": "Step 1: 2 + 3 = 5.\n```python\nimport os\nwhile True:\n    os.fork()\n```",
    "10 GB": "Step 1: 2 + 3 = 5.\n```python\nx = bytearray(10 * 1024**3)\ns1 = 5\n```",
    "socket": "Step 1: 2 + 3 = 5.\n```python\nimport socket\n"
    "socket.create_connection(('127.0.0.1', 9), timeout=1)\n```",
    "write outside": "Step 1: 2 + 3 = 5.\n```python\nopen({path!r}, 'w').write('x')\n```",
    "env secret": "Step 1: 2 + 3 = 5.\n```python\nimport os\n"
    "print(os.environ['RF_TREE_SECRET'])\n```",
}


def _sandbox_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("rf-sandbox-*"))


def test_hostile_code_steps_fail_and_the_run_goes_on(monkeypatch, tmp_path):
    monkeypatch.setenv("RF_TREE_SECRET", "rf-tree-secret-91b")
    folders_before = _sandbox_folders()
    outside = tmp_path / "outside.txt"
    hostile = {k: v.replace("{path!r}", repr(str(outside))) for k, v in HOSTILE.items()}
    config = TreeConfig(rollouts=12, width=7, verify=["code"], code_timeout=3, code_memory_mb=256)
    out = _scripted([[*hostile.values(), GOOD[0]], [GOOD[1]]], config)
    rows = {
        r["text"]: (r, m)
        for r, m in zip(out.nodes.iter_rows(named=True), _meta(out.nodes), strict=True)
    }
    for name, text in hostile.items():
        row, meta = rows[text]
        assert row["is_terminal"] and row["correct"] is False, name
        assert meta["check"]["kind"] == "code" and not meta["check"]["ok"], name
    assert "timed out" in rows[hostile["infinite loop"]][1]["check"]["detail"]
    assert "memory" in rows[hostile["10 GB"]][1]["check"]["detail"]
    assert "KeyError" in rows[hostile["env secret"]][1]["check"]["detail"]
    assert not outside.exists()
    assert "rf-tree-secret-91b" not in out.nodes.write_csv()
    assert out.traces["thought"].to_list() == ["\n\n".join(GOOD)]  # the run went on
    assert _sandbox_folders() <= folders_before  # every throwaway folder was removed


PLAN = "Step 1: First find how many there are in all, then multiply by four."
REAL = ["Step 2: She has 2 apples + 3 apples = 5 apples in all.", "Step 3: So 5 x 4 = $20 total."]


@pytest.mark.parametrize("require", [False, True])
def test_a_step_with_nothing_checkable_is_unverified_and_can_be_required(require):
    config = TreeConfig(rollouts=6, width=2, verify=["equations"], require_claim=require)
    out = _scripted([[PLAN], REAL[:1], REAL[1:]], config)
    rows = {
        r["text"]: (r, m)
        for r, m in zip(out.nodes.iter_rows(named=True), _meta(out.nodes), strict=True)
    }
    plan_row, plan_meta = rows[PLAN]
    assert plan_meta["check"]["ok"] is None  # counted, not guessed
    if require:
        assert plan_row["is_terminal"] and plan_row["correct"] is False
        assert plan_meta["reason"] == "no_claim"
        assert out.traces.height == 0
    else:
        assert not plan_row["is_terminal"]
        # units, `x` and `$` are read: both real steps are checked and hold
        assert rows[REAL[0]][1]["check"]["ok"] is True
        assert rows[REAL[1]][1]["check"]["ok"] is True
        [meta] = _meta(out.traces)
        assert meta["unverified_steps"] == 1
