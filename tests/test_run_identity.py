"""The run identity rule (README, "Recipes"): a run is its generation (problem set and
fingerprint); the name is a label; other filters or corrected golds re-judge stored traces."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import run_refilter
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse


def _recipe(source: str, **over) -> dict:
    return {
        "name": "identity",
        "problems": {"source": source},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "self_output", "samples": 4},
        "filters": ["format", "answer"],
        **over,
    }


def _problems(tmp_path, golds: dict[int, str] | None = None) -> str:
    p = load_problems("builtin:arithmetic", limit=8, difficulty=(2, 4))
    rows = [{"question": q, "answer": g} for q, g in zip(p["question"], p["gold"], strict=True)]
    for i, gold in (golds or {}).items():
        rows[i]["answer"] = gold
    return str(write_jsonl(tmp_path / "problems.jsonl", rows))


def _traces(path) -> pl.DataFrame:
    with Warehouse(path, read_only=True) as wh:
        return wh.sql("SELECT * FROM traces ORDER BY trace_id")


def test_a_renamed_recipe_is_the_same_run(prefect_api, tmp_path):
    path = str(tmp_path / "wh.duckdb")
    source = _problems(tmp_path)
    first = run_recipe(parse_recipe(_recipe(source)), path)
    renamed = run_recipe(parse_recipe(_recipe(source, name="identity-v2")), path)
    assert renamed["run_id"] == first["run_id"] and renamed["engine_calls"] == 0
    with Warehouse(path, read_only=True) as wh:
        runs = wh.sql("SELECT run_id, recipe_name FROM runs")
        (stats,) = run_stats(wh)
    assert runs.rows() == [(first["run_id"], "identity-v2")]
    assert stats.generated == first["generated"] == 32  # the run's traces, not zero


def test_a_rerun_with_other_filters_refilters_what_is_stored(prefect_api, tmp_path):
    path = str(tmp_path / "wh.duckdb")
    source = _problems(tmp_path)
    strict = ["format", "answer", {"length": {"shortest_k": 1}}, "dedup"]
    first = run_recipe(parse_recipe(_recipe(source)), path)
    again = run_recipe(parse_recipe(_recipe(source, filters=strict)), path)
    assert again["engine_calls"] == 0 and again["refiltered"]["traces"] == 32
    assert again["refiltered"]["why"] == "filters changed"
    after = _traces(path)
    verdicts = [list(json.loads(m)["verdicts"]) for m in after["meta"]]
    assert all(v == ["format", "answer", "length", "dedup"] for v in verdicts)
    assert again["refiltered"]["kept"] == int((after["status"] == "kept").sum()) < first["kept"]
    # exactly what `refilter` makes of the same filters
    run_refilter(first["run_id"], path, list(parse_recipe(_recipe(source, filters=strict)).filters))
    assert _traces(path).equals(after)
    with Warehouse(path, read_only=True) as wh:
        (stats,) = run_stats(wh)
    assert [name for name, _ in stats.funnel] == ["format", "answer", "length", "dedup"]
    assert stats.kept == again["refiltered"]["kept"]


def test_a_corrected_gold_rejudges_the_stored_traces(prefect_api, tmp_path, cli):
    path = str(tmp_path / "wh.duckdb")
    source = _problems(tmp_path)
    first = run_recipe(parse_recipe(_recipe(source)), path)
    ids = load_problems(source)["problem_id"].to_list()
    solved = set(_traces(path).filter(status="kept")["problem_id"])
    k = next(i for i, pid in enumerate(ids) if pid in solved)
    kept = _traces(path).filter(status="kept", problem_id=ids[k])
    # The answer key changes for problem k: re-running the recipe re-judges its traces.
    again_summary = run_recipe(parse_recipe(_recipe(_problems(tmp_path, {k: "-123456"}))), path)
    assert again_summary["refiltered"]["why"] == "gold answers changed"
    assert again_summary["refiltered"]["problems"] == 1
    again = _traces(path).filter(problem_id=ids[k])
    assert "wrong_answer" in set(again["reject_reason"])
    assert not (again["status"] == "kept").any()
    assert {json.loads(m)["gold"] for m in again["meta"]} == {"-123456"}
    # Corrected back through `import`: it says so and names the run; `refilter` re-checks.
    _problems(tmp_path)
    proc = cli("import", source, "-w", path, check=True)
    assert "gold answer changed for 1 stored problems" in proc.stdout
    assert f"reasonfactory refilter --run {first['run_id']}" in proc.stdout
    run_refilter(first["run_id"], path)
    restored = _traces(path).filter(problem_id=ids[k])
    assert restored.filter(status="kept")["trace_id"].equals(kept["trace_id"])


def test_a_model_folder_trained_again_at_the_same_path_is_another_run(tmp_path):
    """The vllm engine's identity holds a stamp of the folder's weights: the same folder
    resumes its run, a retrained one (new weights at the same path) starts a new run and
    new sample keys; a hub name has no stamp."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    (model / "config.json").write_text("{}")

    def recipe():
        return parse_recipe(
            {
                "name": "r",
                "problems": {"source": "builtin:arithmetic", "limit": 3},
                "engine": {"kind": "vllm", "model": str(model)},
            }
        )

    first, same = recipe(), recipe()
    assert first.engine.weights and (first.run_id, first.engine_id) == (same.run_id, same.engine_id)
    assert parse_recipe(first.to_data()).run_id == first.run_id  # stored recipes keep it
    time.sleep(0.01)
    (model / "model.safetensors").write_bytes(b"\1" * 64)  # trained again: same size, new file
    again = recipe()
    assert again.run_id != first.run_id and again.engine_id != first.engine_id
    (model / "config.json").write_text('{"a": 1}')  # not the weights: the same model
    assert recipe().run_id == again.run_id
    hub = parse_recipe({**first.to_data(), "engine": {"kind": "vllm", "model": "org/name"}})
    assert hub.engine.weights == ""


def test_a_deployment_stores_no_weights_stamp_so_each_run_stamps_afresh(tmp_path):
    """`schedule` and `deploy` store the recipe without the stamp a run fills in: the run a
    deployment starts after the model folder was trained again is a new run."""
    from reasonfactory.flows.cli.run import deployment_parameters

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    data = {
        "name": "r",
        "problems": {"source": "builtin:arithmetic", "limit": 3},
        "engine": {"kind": "vllm", "model": str(model)},
    }
    deployed = deployment_parameters(parse_recipe(data), str(tmp_path / "w.duckdb"))
    assert "weights" not in deployed["recipe"]["engine"]
    before = parse_recipe(deployed["recipe"])  # what a run of the deployment parses
    assert before.run_id == parse_recipe(data).run_id
    time.sleep(0.01)
    (model / "model.safetensors").write_bytes(b"\1" * 64)  # trained again in place
    after = parse_recipe(deployed["recipe"])
    assert after.engine.weights != before.engine.weights and after.run_id != before.run_id


@pytest.mark.parametrize(
    "generate, source",
    [
        ({"method": "self_output", "samples": 3}, "builtin:arithmetic"),
        ({"method": "distill", "samples": 2}, "builtin:arithmetic"),
        ({"method": "tree", "rollouts": 4, "width": 2}, "builtin:arithmetic"),
        ({"method": "journey", "samples": 2}, "builtin:linear"),
        ({"method": "sos"}, "builtin:countdown"),
    ],
)
def test_a_rerun_of_any_method_finds_nothing_stale(generate, source, prefect_api, tmp_path):
    """Stale traces are read from what each was judged against (`meta.gold`): every method
    records it so that an unchanged re-run re-judges nothing."""
    path = str(tmp_path / "wh.duckdb")
    recipe = {
        "name": "stale",
        "problems": {"source": source, "limit": 6},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": generate,
    }
    first = run_recipe(parse_recipe(recipe), path)
    again = run_recipe(parse_recipe(recipe), path)
    assert first["generated"] > 0 and "refiltered" not in first
    assert again["problems_generated"] == 0 and "refiltered" not in again
