"""Code problems end to end on the sim engine: self_output with right, wrong, crashing, looping
and hostile programs through the real flow into DuckDB; the verdicts, the `sandbox:` line
(what ran), a rerun that adds nothing, best_of_n by pass rate, distill, eval's pass@k over
code problems, and an SFT export whose assistant turns end in the program."""

from __future__ import annotations

import json
import os

import pytest
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.verify.sandbox_layers import weak_layers
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.store import Warehouse

RATES = {"wrong": 0.2, "crashing": 0.1, "looping": 0.05, "hostile": 0.1}
RECIPE = {
    "name": "code-self-output",
    "problems": {"source": "builtin:code", "limit": 24},
    "engine": {"kind": "sim", "code": RATES},
    "generate": {"method": "self_output", "samples": 4, "temperature": 0.8},
    "filters": ["format", {"answer": {"code": {"timeout_s": 1.0, "workers": 2}}}],
}


@pytest.fixture(autouse=True)
def _strong_sandbox():
    if weak_layers():
        message = f"this machine's sandbox lacks {weak_layers()}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs bubblewrap)")
        pytest.skip(message)


def _traces(path) -> list[dict]:
    with Warehouse(path, read_only=True) as wh:
        rows = wh.sql("SELECT * FROM traces ORDER BY trace_id").to_dicts()
    for r in rows:
        r["meta"] = json.loads(r["meta"])
    return rows


def test_self_output_on_code_problems_judges_every_program(prefect_api, warehouse_path, tmp_path):
    summary = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert summary["generated"] == 96
    reasons = summary["rejected"]
    assert {"failed_tests", "runtime_error"} <= set(reasons), reasons
    assert summary["kept"] + sum(reasons.values()) == 96
    # What ran, as the children reported it: bubblewrap's namespaces and the kernel layers.
    assert "bwrap(" in summary["sandbox"] and "seccomp" in summary["sandbox"]
    assert "(96 runs)" in summary["sandbox"]
    rows = _traces(warehouse_path)
    for r in rows:
        detail = r["meta"]["details"]["answer"]
        assert detail["total"] == 10 and detail["sandbox"].startswith("bwrap(")
        if r["status"] == "kept":
            assert detail["verdict"] == "passed" and r["correct"] is True
            assert r["predicted"] and r["response"].startswith("```python")
        else:
            assert r["reject_reason"] == detail["verdict"] and r["correct"] is False
    hostile = [r for r in rows if "docker.sock" in (r["predicted"] or "")]
    assert hostile and {r["reject_reason"] for r in hostile} == {"runtime_error"}
    assert all("denied" in r["meta"]["details"]["answer"]["detail"] for r in hostile)
    again = run_recipe(parse_recipe(RECIPE), str(warehouse_path))
    assert again["generated"] == 0 and len(_traces(warehouse_path)) == 96
    out = export_sft(warehouse_path, tmp_path / "sft", fmt="jsonl")
    assert out["rows"] == summary["kept"]
    with Warehouse(warehouse_path, read_only=True) as wh:
        user, assistant = wh.sql("SELECT messages FROM sft LIMIT 1")["messages"][0]
    assert "standard input" in user["content"]
    assert assistant["content"].startswith("<think>")
    assert assistant["content"].rstrip().endswith("```")


def test_best_of_n_picks_by_pass_rate_and_distill_asks_for_a_program(prefect_api, warehouse_path):
    best = {
        **RECIPE,
        "name": "code-best-of-n",
        "problems": {"source": "builtin:code", "limit": 8},
        "engine": {"kind": "sim", "code": {"wrong": 0.5}},
        "generate": {"method": "self_output", "samples": 4, "selection": {"by": "best_of_n"}},
        "filters": ["format", {"answer": {"code": {"timeout_s": 1.0}}}, "selected"],
    }
    run_recipe(parse_recipe(best), str(warehouse_path))
    rows = _traces(warehouse_path)
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    for samples in by_problem.values():
        values = [s["meta"]["selection"]["value"] for s in samples]
        rates = [
            s["meta"]["details"]["answer"]["passed"] / s["meta"]["details"]["answer"]["total"]
            for s in samples
        ]
        assert values == pytest.approx(rates)  # the reward is the share of tests passed
        chosen = [s for s in samples if s["meta"]["selection"]["selected"]]
        assert len(chosen) == 1 and chosen[0]["meta"]["selection"]["value"] == max(values)
        kept = [s for s in samples if s["status"] == "kept"]
        assert kept == ([chosen[0]] if max(values) == 1 else [])
    distill = {
        **RECIPE,
        "name": "code-distill",
        "problems": {"source": "builtin:code", "limit": 6},
        "engine": {
            "kind": "sim",
            "code": {"wrong": 0.0, "crashing": 0.0, "looping": 0.0, "hostile": 0.0},
        },
        "generate": {"method": "distill", "samples": 2},
    }
    summary = run_recipe(parse_recipe(distill), str(warehouse_path))
    assert summary["kept"] == summary["generated"] == 12


def test_eval_gives_pass_at_k_over_code_problems(prefect_api, warehouse_path):
    recipe = eval_recipe(
        {
            "name": "code-eval",
            "problems": {"source": "builtin:code", "limit": 20},
            "engine": {
                "kind": "sim",
                "code": {"wrong": 0.4, "crashing": 0.1, "looping": 0.0, "hostile": 0.0},
            },
        },
        samples=4,
        temperature=0.8,
    )
    rows = run_eval(recipe, warehouse_path)
    get = {(r["subset"], r["metric"]): r["value"] for r in rows.iter_rows(named=True)}
    with Warehouse(warehouse_path, read_only=True) as wh:
        rate = wh.sql("SELECT avg(correct::INT) AS r FROM traces")["r"][0]
    assert get[("all", "pass@1")] == pytest.approx(rate)
    assert 0.3 < get[("all", "pass@1")] < 0.7  # half the sim's programs are right
    assert get[("all", "pass@4")] > get[("all", "pass@1")]
