"""The `sft` view holds kept traces only, as README says; `sft_all` holds every trace; the
views say what they hold; `export sft` writes exactly what the view holds."""

from __future__ import annotations

import json

from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.store import Warehouse

RECIPE = {
    "name": "sft-view",
    "problems": {"source": "builtin:arithmetic", "limit": 10},
    "engine": {"kind": "sim", "error_rate": 0.3},
    "generate": {"method": "self_output", "samples": 4},
    "filters": ["format", "answer"],
}


def test_sft_holds_kept_traces_and_export_agrees(prefect_api, tmp_path):
    path = tmp_path / "wh.duckdb"
    run_recipe(parse_recipe(RECIPE), str(path))
    with Warehouse(path, read_only=True) as wh:
        statuses = dict(wh.con.execute("SELECT status, count(*) FROM sft GROUP BY 1").fetchall())
        every = wh.con.execute("SELECT count(*) FROM sft_all").fetchall()[0][0]
        traces = dict(wh.con.execute("SELECT status, count(*) FROM traces GROUP BY 1").fetchall())
        view_ids = [r[0] for r in wh.con.execute("SELECT trace_id FROM sft ORDER BY 1").fetchall()]
        comments = dict(
            wh.con.execute(
                "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        )
    assert traces["rejected"] > 0  # else the test would prove nothing
    assert statuses == {"kept": traces["kept"]} and every == sum(traces.values())
    assert "kept traces only" in comments["sft"] and "rejected" in comments["sft_all"]
    assert set(comments) >= {"sft", "sft_all", "prm", "dpo"} and all(comments.values())
    export_sft(path, tmp_path / "out", fmt="jsonl")
    rows = [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert sorted(r["trace_id"] for r in rows) == view_ids
    rejected = export_sft(path, tmp_path / "rej", fmt="jsonl", where="status = 'rejected'")
    assert rejected["rows"] == traces["rejected"]
