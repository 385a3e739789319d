"""The self-improvement loop end to end on a tiny student: real vLLM (CPU), real TRL, real
Prefect flows and a real DuckDB file; and a loop killed in a stage resumes at that stage.

vLLM is optional outside CI (the module skips with the install command); in CI its absence
is an error. One round of a student built from scratch: cold start on 30 labelled problems,
generation on 30 new ones whose answers are not in the problem file, train, eval, control.
"""

from __future__ import annotations

import json
from unittest.mock import patch

import pytest
from conftest import require_vllm  # noqa: E402

require_vllm()

import yaml  # noqa: E402
from reasonfactory.flows import loop_stages  # noqa: E402
from reasonfactory.flows.loop import run_loop  # noqa: E402
from reasonfactory.flows.loop_ledger import Chunk, Exported, Generation  # noqa: E402
from reasonfactory.flows.loop_tables import compare_table, loop_table  # noqa: E402
from reasonfactory.generators.verify.steps import fixed_errors  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny-loop",
    "student": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 256,
    },
    "problems": {
        "difficulty": [1, 1],
        "seed_set": 30,
        "held_out": 30,
        "per_round": 30,
        "compare_extra": 50,
    },
    "rounds": 1,
    "engine": {
        "kind": "vllm",
        "dtype": "float32",
        "max_model_len": 256,
        "enforce_eager": True,
        "engine_args": {"distributed_executor_backend": "uni", "max_num_batched_tokens": 16384},
    },
    "generate": {"method": "self_output", "samples": 2, "temperature": 0.8, "max_tokens": 48},
    "train": {"max_steps": 20, "batch_size": 16, "logging_steps": 5},
    "round_steps": 5,
    "eval": {"max_tokens": 48},
    # the method comparison: journey data from the same cold start on round 1's problems in
    # order, at round 1's token budget (an arm cheaper per problem going on to the extra
    # problems is tests/test_loop_budget.py's, with the sim engine: cheaper than a vLLM arm)
    "compare_budget": {"tolerance": 0.2, "first_chunk": 10},
    "compare": {
        "journey": {
            "generate": {
                "method": "journey",
                "samples": 2,
                "temperature": 0.8,
                "max_tokens": 48,
                "keep_sources": False,
                "error_types": ["arithmetic_slip"],
                "seed": 1,  # fresh samples: the completions table would serve round 1's
            },
            "filters": ["format", {"steps": {"allow_fixed": True}}, "answer", "dedup"],
        },
    },
}


def write_loop(tmp_path, **changes) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def test_one_round_end_to_end(prefect_api, tmp_path):
    path = write_loop(tmp_path)
    ledger, config = run_loop(path)
    work = tmp_path / "tiny"
    expected = [
        "problems", "cold:student", "cold:distill", "cold:export", "cold:train", "cold:eval",
        "r1:generate", "r1:export", "r1:train", "r1:eval", "r1:control:train",
        "r1:control:eval", "cmp:journey:generate", "cmp:journey:export",
        "cmp:journey:train", "cmp:journey:eval",
    ]  # fmt: skip
    assert [s for s in expected if s not in ledger] == []
    # The rounds' problem file carries no answers; the held-out file is never trained on.
    round_rows = [json.loads(x) for x in (work / "problems" / "round-1.jsonl").open()]
    assert round_rows and all("answer" not in r for r in round_rows)
    for name in ("round-0", "round-1", "control-1", "compare-journey"):
        assert (work / "models" / name / "config.json").exists()
        assert (work / "models" / name / "tokenizer_config.json").exists()
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        golds = wh.sql(
            "SELECT count(*) FILTER (WHERE gold IS NOT NULL) AS g, count(*) AS n FROM problems "
            "WHERE source = 'round-1'"
        ).row(0)
        models = wh.sql("SELECT path, parent, data FROM models ORDER BY created_at")
        evals = wh.sql("SELECT DISTINCT run_id FROM evals WHERE metric = 'pass@1'")
        heldout_kept = wh.sql(
            "SELECT count(*) AS n FROM traces t JOIN problems p USING (problem_id) "
            "WHERE p.source = 'heldout' AND t.status <> 'eval'"
        )["n"][0]
    assert golds == (0, 30)
    assert models.height == 4  # cold start, round 1, control 1, the arm
    assert all(p.endswith("round-0") for p in models["parent"][1:])
    assert [m.rsplit("/", 1)[-1] for m in models["path"]] == [
        "round-0", "round-1", "control-1", "compare-journey"
    ]  # fmt: skip
    assert evals.height == 4
    assert heldout_kept == 0
    table = loop_table(ledger, config.rounds)
    assert [r["model"] for r in table] == ["round-0 (cold start)", "round-1"]
    assert table[1]["control_n"] == 30 and table[1]["n"] == 30
    # the comparison: the same problems in order, at round 1's budget of completion tokens
    # used, each arm's and round 1's read from the warehouse's progress rows
    arms = compare_table(ledger, config)
    assert [a["arm"] for a in arms] == [
        "self_output", "journey", "control (seed only)"
    ]  # fmt: skip
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        used = dict(
            wh.sql(
                "SELECT run_id, (sum(tokens_generated) + sum(tokens_reused))::BIGINT "
                "FROM progress GROUP BY 1"
            ).rows()
        )
    round1 = ledger.get("r1:generate", Generation)
    assert arms[0]["traces"] == 60 and arms[0]["problems"] == 30  # 30 problems x 2 samples
    assert arms[0]["tokens_used"] == used[round1.run_id] > 0
    for arm in arms[1:2]:
        made = ledger.get(f"cmp:{arm['arm']}:generate", Generation)
        assert arm["tokens_used"] == made.tokens_used == used[made.run_id]
        assert arm["budget_ratio"] == round(used[made.run_id] / used[round1.run_id], 3)
        assert abs(arm["budget_ratio"] - 1) <= 0.2, arm  # matched within the tolerance
        chunks = [
            r for stage, r in ledger.results.items()
            if stage.startswith(f"cmp:{arm['arm']}:generate:chunk-")
        ]  # fmt: skip
        assert all(isinstance(c, Chunk) for c in chunks)
        assert chunks[0].limit == 10 and {c.generation.run_id for c in chunks} == {made.run_id}
        assert chunks[-1].generation == made and chunks[-1].limit == made.problems
    assert 20 <= arms[1]["problems"] <= 40  # journey samples as self_output does
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        taken = wh.sql(
            "SELECT count(DISTINCT problem_id) AS n FROM traces WHERE run_id = ?",
            [arms[1]["run_id"]],
        )["n"][0]
    assert taken == arms[1]["problems"]  # the arm's chunks are one run over its problems
    assert all(a["n"] == 30 and a["eval_traces"] == 30 for a in arms)
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        journeys = wh.sql(
            "SELECT thought FROM traces WHERE run_id = ? AND status = 'kept'", [arms[1]["run_id"]]
        )["thought"].to_list()
    assert len(journeys) == ledger.get("cmp:journey:export", Exported).rows
    assert all(fixed_errors(t)[1] >= 1 for t in journeys)  # every kept journey fixes an error


def test_killed_loop_resumes_at_its_stage_and_trains_from_the_start(prefect_api, tmp_path):
    path = write_loop(tmp_path, rounds=1, control=False, train_from="start", compare={})
    real = loop_stages.train_and_record
    calls = []

    def dies_in_round_one(data, base, out, config, *args, **kwargs):
        calls.append(str(out))
        if "round-1" in str(out) and len(calls) == 2:
            raise KeyboardInterrupt  # killed half-way through the stage
        return real(data, base, out, config, *args, **kwargs)

    with patch.object(loop_stages, "train_and_record", dies_in_round_one):
        with pytest.raises(BaseException):  # noqa: B017, PT011
            run_loop(path)
        state = json.loads((tmp_path / "tiny" / "state.json").read_text())["stages"]
        assert "r1:generate" in state and "r1:train" not in state
        work = tmp_path / "tiny"
        with Warehouse(work / "loop.duckdb", read_only=True) as wh:
            before = wh.sql("SELECT count(*) AS n FROM completions")["n"][0]
        ledger, _ = run_loop(path)
    assert "r1:eval" in ledger
    # Only round 1's training ran again: the cold start was not retrained, nothing regenerated
    # (the eval of the new model adds its own completions).
    assert [c.rsplit("/", 1)[-1] for c in calls] == [
        "round-0.partial", "round-1.partial", "round-1.partial"
    ]  # fmt: skip
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        gen_runs = wh.sql("SELECT count(*) AS n FROM runs WHERE recipe_name LIKE '%r1:generate'")
        after = wh.sql("SELECT count(*) AS n FROM completions")["n"][0]
        parents = wh.sql("SELECT path, parent, recipe FROM models ORDER BY created_at")
    assert gen_runs["n"][0] == 1
    # train_from: start -- round 1 trains the untrained student again, for 20 + 5 steps
    assert parents["parent"][1].endswith("student-0")
    assert '"max_steps": 25' in parents["recipe"][1]
    assert after == before + 30  # the round-1 model's greedy eval, and nothing else

    # A stage redone (dropped from the ledger) trains new weights at the same path: they are
    # another model, evaluated afresh, never scored by the old weights' stored eval.
    state = json.loads((work / "state.json").read_text())
    old_eval = state["stages"].pop("r1:eval")["run_id"]
    del state["stages"]["r1:train"]
    (work / "state.json").write_text(json.dumps(state))
    redone, _ = run_loop(path)
    assert redone.results["r1:eval"].run_id != old_eval
    with Warehouse(work / "loop.duckdb", read_only=True) as wh:
        fresh = wh.sql("SELECT count(*) AS n FROM completions")["n"][0]
    assert fresh == after + 30  # its 30 greedy samples were generated, not served from the cache
