"""`selection: confidence` needs log-probabilities: stored samples without them are not
reused for it, and a server that returns none stops the run with a clear error."""

from __future__ import annotations

import json

import pytest
from conftest import write_jsonl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.engines.base import GenRequest
from reasonfactory.generators.engines.cached import sample_key
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer


def _recipe(tmp_path, base_url: str, selection: str) -> dict:
    problems = [{"question": f"What is {a} + {2 * a}?", "answer": str(3 * a)} for a in range(5)]
    return {
        "name": f"distill-{selection}",
        "problems": {"source": str(write_jsonl(tmp_path / "q.jsonl", problems))},
        "engine": {"kind": "openai", "model": "teacher", "base_url": base_url},
        "generate": {"method": "distill", "samples": 2, "selection": {"by": selection}},
        "filters": ["format", "answer"],
    }


def test_the_sample_key_says_whether_logprobs_were_asked():
    ask = GenRequest(prompt="2 + 2 =", seed=1)
    assert sample_key("e", ask, 0) != sample_key(
        "e", GenRequest(prompt="2 + 2 =", seed=1, logprobs=True), 0
    )


def test_switching_a_finished_distill_run_to_confidence_selects(prefect_api, tmp_path):
    path = str(tmp_path / "wh.duckdb")
    with TeacherServer() as srv:
        run_recipe(parse_recipe(_recipe(tmp_path, srv.base_url, "majority")), path)
        asked = len(srv.state.log)
        summary = run_recipe(parse_recipe(_recipe(tmp_path, srv.base_url, "confidence")), path)
        assert len(srv.state.log) == 2 * asked  # every sample asked again, with logprobs
    with Warehouse(path, read_only=True) as wh:
        metas = wh.sql("SELECT meta FROM traces WHERE run_id = ?", [summary["run_id"]])["meta"]
    selection = [json.loads(m)["selection"] for m in metas]
    assert sum(s["selected"] for s in selection) == 5  # one per problem
    assert all(s["value"] is not None for s in selection)


def test_confidence_on_a_server_without_logprobs_is_a_clear_error(prefect_api, tmp_path):
    with TeacherServer(logprobs=False) as srv:
        recipe = parse_recipe(_recipe(tmp_path, srv.base_url, "confidence"))
        with pytest.raises(UserError, match="confidence needs log-probabilities.*none for 10"):
            run_recipe(recipe, str(tmp_path / "wh.duckdb"))
