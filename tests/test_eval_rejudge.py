"""An eval run follows its answer key: a corrected gold re-judges its traces in place (status
stays 'eval') and scores it again, also when the run that stored the new gold died before it
could re-judge; `kind: eval` (not a name) makes an eval run."""

from __future__ import annotations

import pytest
from conftest import write_jsonl
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import run_refilter
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse


def _file(tmp_path, wrong: set[int] = frozenset()) -> str:
    p = load_problems("builtin:arithmetic", limit=12, difficulty=(1, 2))
    rows = [
        {"question": q, "answer": str(int(g) + 1000) if i in wrong else g}
        for i, (q, g) in enumerate(zip(p["question"], p["gold"], strict=True))
    ]
    return str(write_jsonl(tmp_path / "bench.jsonl", rows))


def _recipe(source: str):
    return eval_recipe(
        {
            "name": "bench",
            "problems": {"source": source},
            "engine": {"kind": "sim", "error_rate": 0.0},
        }
    )


def _pass1(rows) -> float:
    return rows.filter(subset="all", metric="pass@1")["value"][0]


def _state(path, run_id):
    with Warehouse(path, read_only=True) as wh:
        return wh.sql(
            "SELECT status, count(*) AS n, sum(correct::INT) AS right FROM traces "
            "WHERE run_id = ? GROUP BY 1",
            [run_id],
        ).rows()


def test_an_eval_after_a_gold_correction_rejudges_in_place_and_scores_again(prefect_api, tmp_path):
    path = tmp_path / "wh.duckdb"
    # A benchmark file whose answer key is wrong for 4 of 12 problems: a perfect model scores 8.
    first = run_eval(_recipe(_file(tmp_path, {0, 1, 2, 3})), path)
    assert _pass1(first) == pytest.approx(8 / 12)
    run_id = first["run_id"][0]
    # The key is corrected: the same eval re-judges what is stored, generates nothing.
    again = run_eval(_recipe(_file(tmp_path)), path)
    assert again["run_id"][0] == run_id and _pass1(again) == pytest.approx(1.0)
    assert _state(path, run_id) == [("eval", 12, 12)]
    with Warehouse(path, read_only=True) as wh:
        stored = wh.sql("SELECT value FROM evals WHERE subset = 'all' AND metric = 'pass@1'")
    assert stored["value"].to_list() == [pytest.approx(1.0)]


def test_a_gold_stored_by_a_run_that_then_died_is_still_rejudged(prefect_api, tmp_path):
    path = tmp_path / "wh.duckdb"
    run_id = run_eval(_recipe(_file(tmp_path, {0, 1})), path)["run_id"][0]
    # What a run that crashed after storing the corrected golds leaves: new golds, old verdicts.
    with Warehouse(path) as wh:
        wh.update_golds(load_problems(_file(tmp_path)))
    assert _state(path, run_id) == [("eval", 12, 10)]
    rows = run_eval(_recipe(_file(tmp_path)), path)
    assert _pass1(rows) == pytest.approx(1.0) and _state(path, run_id) == [("eval", 12, 12)]


def test_refilter_rejudges_an_eval_run_with_its_own_filters_only(prefect_api, tmp_path, cli):
    path = tmp_path / "wh.duckdb"
    run_id = run_eval(_recipe(_file(tmp_path)), path)["run_id"][0]
    source = _file(tmp_path, {5})
    proc = cli("import", source, "-w", str(path), check=True)
    assert f"reasonfactory refilter --run {run_id}" in proc.stdout
    summary = run_refilter(run_id, str(path))  # what `import` recommends: it works
    assert summary["rescored"] > 0 and _state(path, run_id) == [("eval", 12, 11)]
    with Warehouse(path, read_only=True) as wh:
        value = wh.sql("SELECT value FROM evals WHERE subset = 'all' AND metric = 'pass@1'")
    assert value["value"][0] == pytest.approx(11 / 12)
    # Other filters would make benchmark answers something else: refused, nothing changes.
    (tmp_path / "strict.yaml").write_text("filters: [format, answer, dedup]\n")
    proc = cli("refilter", "--run", run_id, "--recipe", "strict.yaml", "-w", str(path))
    assert proc.returncode == 1 and f"run {run_id} is an eval run" in proc.stderr
    assert _state(path, run_id) == [("eval", 12, 11)]


def test_kind_eval_not_the_name_makes_an_eval(prefect_api, tmp_path):
    path = str(tmp_path / "wh.duckdb")
    base = {
        "problems": {"source": "builtin:arithmetic", "limit": 6},
        "generate": {"samples": 2},
    }
    named = parse_recipe({"name": "eval:looks-like-one", **base})
    assert named.kind == "data" and not named.is_eval
    summary = run_recipe(named, path)
    with Warehouse(path, read_only=True) as wh:
        statuses = set(wh.sql("SELECT DISTINCT status FROM traces")["status"])
        kinds = wh.sql("SELECT kind FROM runs")["kind"].to_list()
    assert "eval" not in statuses and statuses <= {"kept", "rejected"} and kinds == ["data"]
    # The same recipe as an eval is another run, stored with status 'eval'.
    as_eval = parse_recipe({"name": "eval:looks-like-one", "kind": "eval", **base})
    assert as_eval.run_id != summary["run_id"] and as_eval.is_eval
    run_recipe(as_eval, path)
    with Warehouse(path, read_only=True) as wh:
        mine = wh.sql("SELECT DISTINCT status FROM traces WHERE run_id = ?", [as_eval.run_id])
    assert mine["status"].to_list() == ["eval"]
    with pytest.raises(UserError, match="kind: 'exam' is not allowed"):
        parse_recipe({"name": "x", "kind": "exam", **base})


def test_an_older_warehouse_gains_the_kind_of_its_runs(tmp_path):
    """Before `kind`, an eval was told by its name: a warehouse from then reads the same."""
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE runs (run_id VARCHAR, recipe_name VARCHAR, status VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('r_1', 'eval:bench', 'done'), ('r_2', 'x', 'done')")
    con.close()
    with Warehouse(path) as wh:
        kinds = wh.sql("SELECT run_id, kind FROM runs ORDER BY 1").rows()
    assert kinds == [("r_1", "eval"), ("r_2", "data")]
