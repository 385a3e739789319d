"""End to end: `tree` runs in the real Prefect flow on a DuckDB file; PRM/DPO exports load.

The headline test: on 5-7 operation arithmetic with the sim at error_rate 0.3, answer-checked
`self_output` traces include lucky answers (a false intermediate equation, the right final
answer: the sim's copying typos), and kept `tree` traces never do.
"""

from __future__ import annotations

import json

import pytest
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export_tree import export_dpo, export_prm
from reasonfactory.warehouse.store import Warehouse
from test_tree import false_equations

PROBLEMS = {"source": "builtin:arithmetic", "limit": 60, "difficulty": [5, 7]}
ENGINE = {"kind": "sim", "error_rate": 0.3, "typo_rate": 0.1, "wordings": 3}
TREE = {
    "name": "tree",
    "problems": PROBLEMS,
    "engine": ENGINE,
    "generate": {"method": "tree", "rollouts": 8, "width": 4, "shard_size": 25},
}
SELF = {
    "name": "self",
    "problems": PROBLEMS,
    "engine": ENGINE,
    "generate": {"method": "self_output", "samples": 8},
}


@pytest.fixture(scope="module")
def tree_warehouse(prefect_api, tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "wh.duckdb"
    summary = run_recipe(parse_recipe(TREE), str(path))
    return path, summary


def test_self_output_keeps_lucky_answers_tree_keeps_none(tree_warehouse):
    path, _ = tree_warehouse
    run_recipe(parse_recipe(SELF), str(path))
    with Warehouse(path, read_only=True) as wh:
        kept = wh.sql("SELECT method, thought FROM traces WHERE status = 'kept'")
    lucky = {
        method: [t for t in group["thought"] if false_equations(t)]
        for (method,), group in kept.group_by("method")
    }
    counts = kept["method"].value_counts()
    assert dict(zip(counts["method"], counts["count"], strict=True)).get("tree", 0) >= 60
    assert len(lucky["self_output"]) >= 5, "the answer check passes right answers reached wrongly"
    assert lucky["tree"] == []


def test_a_tree_run_stores_every_node_once_and_resumes_to_nothing(tree_warehouse):
    path, summary = tree_warehouse
    assert summary["kept"] == summary["generated"] > 0
    assert summary["engine_requests"] >= 10 * summary["engine_calls"]
    with Warehouse(path, read_only=True) as wh:
        nodes = wh.count("nodes")
        trees = wh.sql("SELECT count(DISTINCT tree_id) AS n FROM nodes")["n"][0]
        progress = wh.sql("SELECT count(*) AS n FROM progress WHERE method = 'tree'")["n"][0]
        orphans = wh.sql(
            "SELECT count(*) AS n FROM nodes c LEFT JOIN nodes p ON c.tree_id = p.tree_id "
            "AND c.parent_id = p.node_id WHERE c.parent_id IS NOT NULL AND p.node_id IS NULL"
        )["n"][0]
    assert trees == progress == 60 and orphans == 0
    again = run_recipe(parse_recipe(TREE), str(path))
    assert again["problems_generated"] == 0 and again["engine_calls"] == 0
    with Warehouse(path, read_only=True) as wh:
        assert wh.count("nodes") == nodes


def test_same_recipe_and_seed_same_nodes_and_traces_whatever_the_shards(tree_warehouse, tmp_path):
    path, _ = tree_warehouse
    other = tmp_path / "again.duckdb"
    resharded = {**TREE, "generate": {**TREE["generate"], "shard_size": 7}}
    run_recipe(parse_recipe(resharded), str(other))
    nodes = "SELECT * FROM nodes ORDER BY tree_id, node_id"
    traces = (
        "SELECT trace_id, problem_id, thought, response, predicted, score, status, n_tokens "
        "FROM traces WHERE method = 'tree' ORDER BY trace_id"
    )
    with Warehouse(path, read_only=True) as a, Warehouse(other, read_only=True) as b:
        assert a.sql(nodes).equals(b.sql(nodes))
        assert a.sql(traces).equals(b.sql(traces))


def _load(out, fmt):
    import datasets

    if fmt == "hf":
        return datasets.load_from_disk(str(out))
    name = "parquet" if fmt == "parquet" else "json"
    file = out / ("data.parquet" if fmt == "parquet" else "data.jsonl")
    return datasets.load_dataset(
        name, data_files=str(file), split="train", cache_dir=str(out.parent / "c")
    )


def test_prm_export_is_stepwise_supervision(tree_warehouse, tmp_path):
    path, _ = tree_warehouse
    loaded = {}
    for fmt in ("hf", "parquet", "jsonl"):
        result = export_prm(path, tmp_path / f"prm-{fmt}", fmt=fmt)
        ds = _load(tmp_path / f"prm-{fmt}", fmt)
        assert ds.num_rows == result["rows"] > 0
        loaded[fmt] = ds.to_list()
    assert loaded["hf"] == loaded["parquet"] == loaded["jsonl"]
    rows = loaded["hf"]
    for row in rows:
        assert isinstance(row["prompt"], str) and row["prompt"].startswith("Compute")
        assert len(row["completions"]) == len(row["labels"]) >= 1
        assert all(isinstance(x, bool) for x in row["labels"])
        if row["leaf_correct"]:  # a verified path to the right answer: every step is good
            assert all(row["labels"]) and row["completions"][-1].startswith("The answer is")
            assert false_equations("\n".join(row["completions"])) == []
        else:
            assert row["labels"][-1] is False
    assert any(r["leaf_correct"] for r in rows) and any(not r["leaf_correct"] for r in rows)
    only_right = export_prm(path, tmp_path / "prm-right", fmt="jsonl", where="leaf_correct")
    assert 0 < only_right["rows"] < len(rows)


def test_dpo_export_pairs_sibling_steps(tree_warehouse, tmp_path):
    path, _ = tree_warehouse
    result = export_dpo(path, tmp_path / "dpo", fmt="hf")
    rows = _load(tmp_path / "dpo", "hf").to_list()
    assert len(rows) == result["rows"] > 0
    for row in rows:
        assert row["prompt"].startswith(row["question"]) and "<think>\n" in row["prompt"]
        assert row["prompt"].endswith("<think>\n" if not row["prefix_steps"] else "\n\n")
        assert row["chosen"] != row["rejected"]
        assert row["chosen_q"] - row["rejected_q"] >= 0.5
        assert false_equations(row["chosen"]) == []
        step = len(row["prefix_steps"]) + 1
        assert row["chosen"].startswith(f"Step {step}:") and row["rejected"].startswith(
            f"Step {step}:"
        )
        if row["rejected_failed"]:
            assert false_equations(row["rejected"])
    assert max(r["margin"] for r in rows) <= 2.0  # Q lies in [-1, 1]
    with pytest.raises(UserError, match="no dpo rows"):
        export_dpo(path, tmp_path / "dpo-2", fmt="jsonl", margin=2.5)


def test_exports_explain_what_is_missing(prefect_api, tmp_path, tree_warehouse):
    empty = tmp_path / "empty.duckdb"
    Warehouse(empty).close()
    with pytest.raises(UserError, match="no search trees"):
        export_prm(empty, tmp_path / "x")
    path, _ = tree_warehouse
    with pytest.raises(UserError, match="no dpo rows match"):
        export_dpo(path, tmp_path / "y", where="margin > 100")
    with pytest.raises(UserError, match="--labels"):
        export_prm(path, tmp_path / "z", labels="nope")


def test_cli_runs_a_tree_recipe_and_exports_prm_and_dpo(cli, tmp_path):
    recipe = tmp_path / "tree.yaml"
    small = {**TREE, "problems": {**PROBLEMS, "limit": 8}}
    recipe.write_text(json.dumps(small))  # JSON is YAML
    cli("run", str(recipe), check=True)
    for kind in ("prm", "dpo"):
        assert "Usage" in cli("export", kind, "--help", check=True).stdout
        done = cli("export", kind, "--out", str(tmp_path / kind), "--format", "jsonl", check=True)
        assert f"to {tmp_path / kind / 'data.jsonl'}" in done.stdout
        lines = (tmp_path / kind / "data.jsonl").read_text().splitlines()
        assert len(lines) > 0 and "prompt" in json.loads(lines[0])
        bad = cli("export", kind, "--out", str(tmp_path / "bad"), "--where", "no_such_column")
        assert bad.returncode == 1 and "error:" in bad.stderr and "Traceback" not in bad.stderr
