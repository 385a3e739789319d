"""`export rl`: one prompt-only row per problem, with what a reward needs and the measured
pass rate; benchmark problems and decontamination hits never exported; clear errors."""

from __future__ import annotations

import json

import datasets
import duckdb
import pytest
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.prompts import CODE_SOLVE_PROMPT, SOLVE_PROMPT
from reasonfactory.generators.rl_rows import export_rl
from reasonfactory.warehouse.errors import UserError

# What the stored samples say, computed here without the export's SQL.
TRUTH = """
SELECT t.problem_id, count(*) AS n, avg(t.correct::INT) AS rate, p.gold, p.source
FROM traces t JOIN runs r USING (run_id) JOIN problems p USING (problem_id)
WHERE r.kind = 'data' AND t.correct IS NOT NULL GROUP BY ALL
"""


def _truth(warehouse) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(TRUTH).fetchall()
        eval_only = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT problem_id FROM traces WHERE status = 'eval' OR "
                "json_extract_string(meta, '$.verdicts.decontam') = 'contaminated'"
            ).fetchall()
        }
        prompts = dict(
            con.execute(
                "SELECT problem_id, any_value(json_extract(meta, '$.prompt')::VARCHAR) FROM "
                "traces WHERE method = 'self_output' AND status <> 'eval' GROUP BY 1"
            ).fetchall()
        )
    return {
        "samples": {pid: (n, rate) for pid, n, rate, *_ in rows},
        "eval_only": eval_only,
        "prompts": prompts,
    }


def _export(warehouse, out, **options) -> list[dict]:
    export_rl(warehouse, out, fmt="trl", **options)
    return datasets.load_from_disk(str(out)).to_list()


def test_trl_rows_carry_prompt_gold_checker_and_pass_rate(rl_warehouse, tmp_path):
    truth = _truth(rl_warehouse)
    rows = _export(rl_warehouse, tmp_path / "rl")
    ids = {r["problem_id"] for r in rows}
    assert len(ids) == len(rows) > 20  # one row per problem
    # the eval run's problems (a benchmark file) and the decontamination hit: never exported
    assert len(truth["eval_only"]) == 4 and not ids & truth["eval_only"]
    assert ids == set(truth["samples"]) - truth["eval_only"]
    for row in rows:
        n, rate = truth["samples"][row["problem_id"]]
        assert (row["n_samples"], row["pass_rate"]) == (n, pytest.approx(rate))
        assert sum(m["n_samples"] for m in row["pass_rates"]) == n
        checker = row["checker"] or ""
        content = row["prompt"][-1]["content"]
        if checker.startswith("code:"):
            assert json.loads(checker[5:])["tests"] and row["ability"] == "code"
            assert content == CODE_SOLVE_PROMPT.format(question=content.split("Problem: ")[-1])
        elif row["problem_id"] in truth["prompts"]:  # the chat self_output asked it with
            assert row["prompt"] == json.loads(truth["prompts"][row["problem_id"]])
        else:  # Countdown by sos: no stored prompt, the factory's solve prompt
            assert checker.startswith("countdown:") and row["gold"]
            assert content.startswith(SOLVE_PROMPT.format(question=""))
    assert {m["model"] for r in rows for m in r["pass_rates"]} >= {"sim"}
    raw = _export(rl_warehouse, tmp_path / "raw", prompt="raw", where="source = 'builtin:code'")
    heads = (SOLVE_PROMPT.format(question=""), CODE_SOLVE_PROMPT.format(question=""))
    assert raw and all(len(r["prompt"]) == 1 for r in raw)
    assert not any(r["prompt"][0]["content"].startswith(heads) for r in raw)


def test_drop_solved_unsolved_and_balance_difficulty(rl_warehouse, tmp_path):
    every = _export(rl_warehouse, tmp_path / "all")
    rates = {r["problem_id"]: r["pass_rate"] for r in every}
    assert {0.0, 1.0} <= set(rates.values()) and any(0 < v < 1 for v in rates.values())
    unsolved = _export(rl_warehouse, tmp_path / "u", drop_unsolved=True)
    assert {r["problem_id"] for r in unsolved} == {p for p, v in rates.items() if v != 0.0}
    both = _export(rl_warehouse, tmp_path / "b", drop_solved=True, drop_unsolved=True)
    assert {r["problem_id"] for r in both} == {p for p, v in rates.items() if 0 < v < 1}
    where = "source = 'builtin:arithmetic'"
    balanced = _export(rl_warehouse, tmp_path / "bal", balance_difficulty=True, where=where)
    levels = [r["difficulty"] for r in balanced]
    counts = {d: levels.count(d) for d in set(levels)}
    assert len(counts) > 1 and len(set(counts.values())) == 1, counts
    arithmetic = [r for r in every if r["source"] == "builtin:arithmetic"]
    assert len(balanced) < len(arithmetic)


def test_bad_options_and_empty_selections_are_clear_errors(rl_warehouse, tmp_path, cli):
    with pytest.raises(UserError, match="--format 'sft': expected trl, verl, openrlhf"):
        export_rl(rl_warehouse, tmp_path / "x", fmt="sft")
    with pytest.raises(UserError, match="no problem matches .*pass_rate > 2.* are exportable"):
        export_rl(rl_warehouse, tmp_path / "x", where="pass_rate > 2")
    with pytest.raises(UserError, match="--where 'nope = 1'.*nope"):
        export_rl(rl_warehouse, tmp_path / "x", where="nope = 1")
    assert not (tmp_path / "x").exists()  # nothing written for a failed export
    # through the CLI: the options reach the export, whose error is one line, no traceback
    bad = cli("export", "rl", "-w", str(rl_warehouse), "--out", "w", "--format", "verl",
              "--drop-solved", "--where", "pass_rate = 1")  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no problem matches" in bad.stderr and "nothing exported" in bad.stderr


def test_a_warehouse_of_only_benchmark_problems_exports_nothing(prefect_api, tmp_path):
    from reasonfactory.flows.evaluate import eval_recipe, run_eval

    bench = tmp_path / "bench.jsonl"
    problem = load_problems("builtin:arithmetic", limit=1).row(0, named=True)
    bench.write_text(json.dumps({"question": problem["question"], "answer": problem["gold"]}))
    recipe = {"name": "b", "problems": {"source": str(bench)}, "engine": {"kind": "sim"}}
    run_eval(eval_recipe(recipe), tmp_path / "wh.duckdb")
    with pytest.raises(UserError, match="none of the 1 problems can be exported for RL"):
        export_rl(tmp_path / "wh.duckdb", tmp_path / "out")


def test_reasoning_gym_problems_carry_their_checker_to_the_reward(tmp_path):
    """Issue 24's `export rl carries the checker`: a gym problem never sampled is exported
    with its family's checker spec, and the answer reward scores with the family's scorer."""
    from reasonfactory.rewards import answer_reward
    from reasonfactory.warehouse.schema import PROBLEMS
    from reasonfactory.warehouse.store import Warehouse

    problems = load_problems("gym:basic_arithmetic", size=3, seed=5)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ingest("problems", PROBLEMS.conform(problems))
    rows = _export(tmp_path / "wh.duckdb", tmp_path / "rl")
    assert len(rows) == 3 and all(r["checker"].startswith("gym:") for r in rows)
    assert {r["ability"] for r in rows} == {"reasoning"}
    assert all(r["pass_rate"] is None and r["n_samples"] == 0 for r in rows)
    right = [f"<think>\nworking\n</think>\n\n\\boxed{{{r['gold']}}}" for r in rows]
    wrong = [f"<think>\nworking\n</think>\n\n\\boxed{{{r['gold']}1}}" for r in rows]
    kwargs = {"gold": [r["gold"] for r in rows], "checker": [r["checker"] for r in rows]}
    assert answer_reward(right, **kwargs) == [1.0] * 3
    assert answer_reward(wrong, **kwargs) == [0.0] * 3
