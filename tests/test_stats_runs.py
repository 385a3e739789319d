"""`stats` on real runs: unsolved problems count (tree problems that stored nothing),
generation-level rejects are their own funnel step, and a distill run against a local
OpenAI-compatible server reports its tokens and, with recipe prices, its cost."""

from __future__ import annotations

import json

import pytest
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

HARD_TREE = {
    "name": "hard-tree",
    "problems": {"source": "builtin:arithmetic", "limit": 24, "difficulty": [6, 7]},
    "engine": {"kind": "sim", "error_rate": 0.6},
    "generate": {"method": "tree", "rollouts": 3, "width": 2, "seed": 1},
}


def test_tree_problems_without_a_correct_path_count_as_unsolved(prefect_api, warehouse_path):
    run_recipe(parse_recipe(HARD_TREE), str(warehouse_path))
    with Warehouse(warehouse_path, read_only=True) as wh:
        (s,) = run_stats(wh)
        with_traces = wh.sql("SELECT count(DISTINCT problem_id) AS n FROM traces")["n"][0]
        with_kept = wh.sql(
            "SELECT count(DISTINCT problem_id) AS n FROM traces WHERE status = 'kept'"
        )["n"][0]
    assert with_traces < 24, "the setting must leave some problems without any trace"
    assert s.method == "tree" and s.attempted == s.problems == 24
    assert s.solved == with_kept < 24
    assert s.pass_at == {}, "tree paths are not independent samples: no pass@k"


def test_generation_rejects_are_their_own_funnel_step(prefect_api, warehouse_path):
    recipe = {
        "name": "sos-budget",
        "problems": {"source": "builtin:countdown", "limit": 30},
        "generate": {"method": "sos", "strategies": ["dfs_sum"], "max_nodes": 25},
        "filters": ["format", "answer"],
    }
    run_recipe(parse_recipe(recipe), str(warehouse_path))
    with Warehouse(warehouse_path, read_only=True) as wh:
        (s,) = run_stats(wh)
    failed = s.rejected.get("no_solution", 0)
    assert 0 < failed < s.generated
    steps = [name for name, _ in s.funnel]
    assert steps == ["generate", "format", "answer"]
    counts = dict(s.funnel)
    assert counts["generate"] == s.generated - failed
    # the format step loses only what the filter rejected, not the failed searches
    assert counts["generate"] - counts["format"] == sum(
        n for r, n in s.rejected.items() if r.startswith("format") or r == "truncated"
    )
    assert counts["answer"] == s.kept


PROBLEMS = [
    {"question": f"What is {a} + {b}?", "answer": str(a + b)}
    for a, b in [(3, 4), (10, 22), (7, 8), (15, 26), (40, 2)]
]


def _distill(path, base_url, prices):
    return parse_recipe(
        {
            "name": "distill-cost",
            "problems": {"source": str(path)},
            "engine": {"kind": "openai", "model": "teacher", "base_url": base_url, **prices},
            "generate": {"method": "distill", "samples": 2, "max_tokens": 200},
            "filters": ["format", "answer"],
        }
    )


def test_distill_tokens_and_cost_from_recipe_prices(prefect_api, warehouse_path, tmp_path, cli):
    path = write_jsonl(tmp_path / "p.jsonl", PROBLEMS)
    prices = {"price_in": 0.55, "price_out": 2.19}
    with TeacherServer(split=True) as srv:
        first = run_recipe(_distill(path, srv.base_url, prices), str(warehouse_path))
        # prices change no text: the same run, nothing asked again
        again = run_recipe(_distill(path, srv.base_url, {"price_in": 1.0}), str(warehouse_path))
        asked = len(srv.state.log)
    assert again["run_id"] == first["run_id"] and again["problems_generated"] == 0
    assert asked == 10  # one request per sample, none on the second run
    # the recipe stored is the last invocation's: put the first prices back for the check
    run_recipe(_distill(path, "http://127.0.0.1:9/v1", prices), str(warehouse_path))
    with Warehouse(warehouse_path, read_only=True) as wh:
        (s,) = run_stats(wh)
        metas = [json.loads(m) for m in wh.sql("SELECT meta FROM traces")["meta"]]
    t_in = sum(m["tokens_in"] for m in metas)
    t_out = sum(m["tokens_out"] for m in metas)
    assert t_in > 0 and t_out > 0 and len(metas) == 10
    assert (s.tokens_in, s.tokens_out) == (t_in, t_out)
    assert s.cost == pytest.approx((t_in * 0.55 + t_out * 2.19) / 1e6)
    assert s.attempted == s.solved == 5 and s.pass_at[1] == 1.0 and s.maj_at[2] == 1.0

    proc = cli("stats", "--format", "json", "-w", str(warehouse_path), check=True)
    (row,) = json.loads(proc.stdout)
    assert row["tokens_in"] == t_in and row["cost"] == pytest.approx(s.cost)
    assert row["funnel"] == [{"step": "format", "traces": 10}, {"step": "answer", "traces": 10}]
    text = cli("stats", "-w", str(warehouse_path), check=True).stdout
    assert f"tokens:   in {t_in}, out {t_out}, cost $" in text
    assert "problems: 5 attempted, 5 solved" in text
    bad = cli("stats", "--run", "r_nope", "-w", str(warehouse_path))
    assert bad.returncode == 1 and "error: --run r_nope: no such run" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_tree_run_reports_its_prompt_tokens(prefect_api, warehouse_path, cli):
    """A search's traces share their engine requests, so they carry no `tokens_in` and
    `stats` said `in ?` for tree, beam, journey and revise runs (and a priced teacher's cost
    left its prompts out). The run's progress rows now count the prompt tokens of every
    request the engine answered, once; a re-run served from the store adds none."""
    recipe = {
        "name": "tree-prompts",
        "problems": {"source": "builtin:arithmetic", "limit": 8, "difficulty": [2, 3]},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "tree", "rollouts": 3, "width": 2, "seed": 1},
    }
    run_recipe(parse_recipe(recipe), str(warehouse_path))
    with Warehouse(warehouse_path, read_only=True) as wh:
        (s,) = run_stats(wh)
        per_problem = wh.sql("SELECT tokens_prompt, tokens_generated FROM progress")
    assert s.method == "tree" and s.tokens_in is not None
    assert per_problem.height == 8 and per_problem["tokens_prompt"].min() > 0
    assert s.tokens_in == per_problem["tokens_prompt"].sum()
    # every request re-sends the question and the path so far: prompts outweigh the steps
    assert s.tokens_in > 2 * per_problem["tokens_generated"].sum()
    text = cli("stats", "-w", str(warehouse_path), check=True).stdout
    assert f"tokens:   in {s.tokens_in}, out" in text
    run_recipe(parse_recipe(recipe), str(warehouse_path))  # all stored: nothing asked
    with Warehouse(warehouse_path, read_only=True) as wh:
        (again,) = run_stats(wh)
    assert again.tokens_in == s.tokens_in
