"""Eval metrics against hand-computed values, and `eval` end to end on the sim engine.

pass@k is Chen et al.'s unbiased estimator 1 - C(n-c, k) / C(n, k); maj@k takes the most
frequent answer among the first k samples (no answer: no vote; a tie scores the share of
tied answers that are right). The flow test runs the real generate flow and a real DuckDB
file: the eval's traces never reach an SFT export.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import run_refilter
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import (
    discordant_pairs,
    eval_rows,
    majority_score,
    mcnemar_exact,
    mean_interval,
    problem_scores,
    wilson,
)
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.stats import pass_at_k
from reasonfactory.warehouse.store import Warehouse


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),
        (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),  # 1 - 3/10 = 0.7
        (5, 2, 4, 1.0),  # fewer than k wrong samples: some k-subset always has a right one
        (4, 0, 2, 0.0),
        (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)),  # 1 - 21/252
    ],
)
def test_pass_at_k_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answers", "correct", "expected"),
    [
        (["7", "7", "3"], [True, True, False], 1.0),
        (["7", "3", "3"], [True, False, False], 0.0),
        (["7", "3"], [True, False], 0.5),  # a two-way tie, one right
        (["7", "3", "5", "5"], [True, False, False, False], 0.0),  # 5 wins alone
        (["7", "3", "5"], [True, False, False], 1 / 3),  # a three-way tie
        ([None, None, "3"], [False, False, False], 0.0),  # blanks do not vote
        ([None, "7"], [False, True], 1.0),
        ([None, None], [False, False], 0.0),
    ],
)
def test_majority_score_ties(answers, correct, expected):
    assert majority_score(answers, correct) == pytest.approx(expected)


def test_wilson_matches_the_formula():
    low, high = wilson(9, 50)  # p = 0.18, z = 1.96: (0.0977, 0.3080)
    assert (round(low, 4), round(high, 4)) == (0.0977, 0.3080)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0


def test_mean_interval_of_fractional_scores_is_the_normal_one():
    mean, low, high = mean_interval([0.25, 0.75, 0.5, 1.0])
    sd = math.sqrt(sum((v - 0.625) ** 2 for v in [0.25, 0.75, 0.5, 1.0]) / 3)
    assert mean == 0.625
    assert high - mean == pytest.approx(1.959964 * sd / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 5, 2 / 2**5),  # all five discordant problems one way: 2 * (1/2)^5
        (5, 0, 2 / 2**5),
        (1, 9, 2 * (1 + 10) / 2**10),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (3, 3, 1.0),
        (0, 0, 1.0),
        (32, 27, 0.6029232012571504),  # scipy.stats.binomtest(27, 59).pvalue
        (52, 25, 0.002799053877277624),  # scipy.stats.binomtest(25, 77).pvalue
    ],
)
def test_mcnemar_exact_is_the_two_sided_binomial_test(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_discordant_pairs_of_two_greedy_evals(prefect_api, warehouse_path):
    runs = []
    for error_rate in (0.0, 0.4):
        recipe = eval_recipe(
            {
                "name": f"sim-{error_rate}",
                "problems": {"source": "builtin:arithmetic", "limit": 30, "difficulty": [2, 3]},
                "engine": {"kind": "sim", "error_rate": error_rate},
            }
        )
        runs.append(run_eval(recipe, warehouse_path)["run_id"][0])
    with Warehouse(warehouse_path, read_only=True) as wh:
        right = [
            dict(wh.sql("SELECT problem_id, correct FROM traces WHERE run_id = ?", [r]).rows())
            for r in runs
        ]
        b, c = discordant_pairs(wh.con, *runs)
    only_first = sum(right[0][p] and not right[1][p] for p in right[0])
    only_second = sum(right[1][p] and not right[0][p] for p in right[0])
    assert (b, c) == (only_first, only_second) and b > 0 and c == 0  # no errors: never worse
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert discordant_pairs(wh.con, runs[1], runs[0]) == (c, b)


def _samples(rows):
    return pl.DataFrame(
        rows,
        schema=["problem_id", "sample_index", "answer", "correct", "source", "difficulty"],
        orient="row",
    )


def test_eval_rows_by_hand():
    # p1: 4 samples, 2 right (7), maj of all 4 is a tie 7/3 -> 0.5;
    # p2: 4 samples, 0 right;  p3: 4 samples, 4 right.
    rows = [("p1", i, a, a == "7", "s", "1") for i, a in enumerate(["7", "3", "7", "3"])]
    rows += [("p2", i, "1", False, "s", "2") for i in range(4)]
    rows += [("p3", i, "9", True, "s", "2") for i in range(4)]
    scores = problem_scores(_samples(rows), [1, 2, 4]).sort("problem_id")
    assert scores["pass@1"].to_list() == [0.5, 0.0, 1.0]
    assert scores["pass@2"].to_list() == pytest.approx([1 - 1 / 6, 0.0, 1.0])
    assert scores["maj@2"].to_list() == [0.5, 0.0, 1.0]  # p1's first two: 7 vs 3, a tie
    assert scores["maj@4"].to_list() == [0.5, 0.0, 1.0]
    out = eval_rows(_samples(rows), model="m", benchmark="b", run_id="r")
    get = {(r["subset"], r["metric"]): r for r in out.iter_rows(named=True)}
    assert get[("all", "pass@1")]["value"] == pytest.approx(0.5)
    assert get[("all", "pass@4")]["value"] == pytest.approx(2 / 3)
    assert get[("all", "pass@4")]["ci_low"] == pytest.approx(wilson(2, 3)[0])  # 0/1 outcomes
    assert get[("difficulty=2", "pass@1")]["value"] == pytest.approx(0.5)
    assert get[("difficulty=1", "pass@2")]["n"] == 1
    assert {r["k"] for r in out.iter_rows(named=True)} == {1, 2, 4}


def test_eval_flow_scores_and_keeps_benchmark_out_of_exports(prefect_api, warehouse_path, tmp_path):
    recipe = eval_recipe(
        {
            "name": "sim-eval",
            "problems": {"source": "builtin:arithmetic", "limit": 40, "difficulty": [2, 3]},
            "engine": {"kind": "sim", "error_rate": 0.2},
        },
        samples=4,
        temperature=0.8,
    )
    rows = run_eval(recipe, warehouse_path)
    get = {(r["subset"], r["metric"]): r for r in rows.iter_rows(named=True)}
    with Warehouse(warehouse_path, read_only=True) as wh:
        per = wh.sql("SELECT problem_id, avg(correct::INT) AS rate FROM traces GROUP BY problem_id")
        statuses = set(wh.sql("SELECT DISTINCT status FROM traces")["status"])
        stored = wh.sql("SELECT count(*) AS n FROM evals")["n"][0]
    assert get[("all", "pass@1")]["value"] == pytest.approx(per["rate"].mean())
    assert get[("all", "pass@1")]["n"] == 40
    # sim: each step right with p = 0.8, so 2-step problems beat 3-step ones on average
    assert 0.3 < get[("all", "pass@1")]["value"] < 0.8
    assert get[("all", "pass@4")]["value"] >= get[("all", "pass@1")]["value"]
    assert ("difficulty=2", "maj@4") in get and ("source=builtin:arithmetic", "pass@1") in get
    assert statuses == {"eval"}
    assert stored == rows.height
    with pytest.raises(Exception, match="no traces match"):
        export_sft(warehouse_path, tmp_path / "sft")
    again = run_eval(recipe, warehouse_path)  # a rerun generates nothing and replaces its rows
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.sql("SELECT count(*) AS n FROM evals")["n"][0] == again.height == rows.height


def test_eval_cli_prints_and_stores(cli, tmp_path):
    (tmp_path / "ev.yaml").write_text(
        "name: sim-eval\n"
        "problems: {source: builtin:arithmetic, limit: 20, difficulty: [1, 2]}\n"
        "engine: {kind: sim, error_rate: 0.1}\n"
    )
    proc = cli("eval", "ev.yaml", "--samples", "2", "--temperature", "0.7", check=True)
    lines = [x for x in proc.stdout.splitlines() if " all " in x]
    assert [x.split()[2] for x in lines] == ["pass@1", "pass@2", "maj@2"], proc.stdout
    assert all("n=20" in x for x in lines)
    proc = cli("query", "SELECT DISTINCT k FROM evals ORDER BY k", "--format", "json")
    assert json.loads(proc.stdout) == [{"k": 1}, {"k": 2}], proc.stdout
    stored = json.loads(
        cli(
            "query",
            "SELECT model, benchmark, subset, metric, k, value, ci_low, ci_high, n, run_id "
            "FROM evals ORDER BY subset, metric",
            "--format",
            "json",
        ).stdout
    )
    # stats --format json: the eval run carries every evals row (all subsets)
    (run,) = json.loads(cli("stats", "--format", "json", check=True).stdout)
    shown = sorted(
        ({k: e[k] for k in stored[0]} for e in run["evals"]),
        key=lambda e: (e["subset"], e["metric"]),
    )
    assert shown == stored and len(stored) > 3
    # stats as text: the eval section, one line per metric over all problems
    text = cli("stats", check=True).stdout
    assert "evals of sim" in text and "status 'eval'" in text, text
    whole = {e["metric"]: e for e in stored if e["subset"] == "all"}
    for metric, e in whole.items():
        line = next(x for x in text.splitlines() if f" {metric} " in x and " all " in x)
        low, high = 100 * e["ci_low"], 100 * e["ci_high"]
        assert f"{100 * e['value']:5.1f}% [{low:.1f}, {high:.1f}]" in line
        assert line.endswith(f"n={e['n']}"), line
    missing = cli("eval", "--model", "somewhere")
    assert missing.returncode == 1 and "--problems" in missing.stderr
    nogold = tmp_path / "nogold.jsonl"
    nogold.write_text('{"question": "Compute 2 + 3."}\n')
    (tmp_path / "ng.yaml").write_text(
        f"name: ng\nproblems: {{source: {nogold}}}\nengine: {{kind: sim}}\n"
    )
    proc = cli("eval", "ng.yaml")
    assert proc.returncode == 1 and "gold answer for every problem" in proc.stderr


def test_eval_traces_stay_out_of_training(prefect_api, cli, tmp_path):
    """`refilter` re-judges an eval run only with its own filters, and its traces stay 'eval'
    (other filters would make benchmark answers kept, exportable); `export sft` takes none of
    its traces, whatever `--where` says about status; an eval with a training run's settings
    is a run of its own and leaves that run's traces as they are."""
    path = tmp_path / "wh.duckdb"
    train = {
        "name": "train",
        "problems": {"source": "builtin:linear", "limit": 8},
        "generate": {"samples": 2, "temperature": 0.8},
    }
    run_recipe(parse_recipe(train), str(path))
    bench = {"name": "bench", "problems": {"source": "builtin:arithmetic", "limit": 10}}
    rows = run_eval(eval_recipe(bench, samples=2, temperature=0.8), path)
    eval_run = rows["run_id"][0]
    (tmp_path / "strict.yaml").write_text("filters: [format, answer]\n")
    proc = cli("refilter", "--run", eval_run, "-w", str(path), "--recipe", "strict.yaml")
    assert proc.returncode == 1 and f"run {eval_run} is an eval run" in proc.stderr, (
        proc.stdout + proc.stderr
    )
    with pytest.raises(UserError, match="is an eval run"):
        run_refilter(
            eval_run, str(path), list(parse_recipe({**train, "filters": ["format"]}).filters)
        )
    proc = cli("refilter", "--run", eval_run, "-w", str(path), check=True)  # its own: re-judged
    assert "its statuses stay 'eval'" in proc.stdout
    with Warehouse(path, read_only=True) as wh:
        statuses = wh.sql("SELECT DISTINCT status FROM traces WHERE run_id = ?", [eval_run])
        benchmark = set(wh.sql("SELECT trace_id FROM traces WHERE status = 'eval'")["trace_id"])
        training = set(wh.sql("SELECT trace_id FROM traces WHERE status <> 'eval'")["trace_id"])
    assert statuses["status"].to_list() == ["eval"] and len(benchmark) == 20 and training

    for n, where in enumerate([None, "status <> 'rejected'", "status IN ('kept', 'eval')"]):
        out = export_sft(path, tmp_path / f"sft{n}", where=where, fmt="jsonl")
        lines = Path(out["path"]).read_text(encoding="utf-8").splitlines()
        ids = {json.loads(x)["trace_id"] for x in lines}
        assert ids and ids <= training and not ids & benchmark, where
    with pytest.raises(UserError, match="no traces match"):
        export_sft(path, tmp_path / "e", where=f"run_id = '{eval_run}' OR status = 'eval'")

    # The same engine, sampling and problems as the training run: an eval of its own (it may
    # reuse the stored completions), and the training run's traces stay training data.
    same = {**train, "filters": ["answer"], "generate": {"samples": 2, "temperature": 0.8}}
    again = run_eval(eval_recipe(same), path)
    assert again["run_id"][0] not in (eval_run, parse_recipe(train).run_id)
    with Warehouse(path, read_only=True) as wh:
        assert set(wh.sql("SELECT trace_id FROM traces WHERE status <> 'eval'")["trace_id"]) == (
            training
        )
        mine = wh.sql("SELECT DISTINCT status FROM traces WHERE run_id = ?", [again["run_id"][0]])
    assert mine["status"].to_list() == ["eval"]


def test_an_interrupted_eval_leaves_only_eval_traces(prefect_api, warehouse_path, tmp_path):
    """An eval that fails part-way has stored its finished shards: they are eval traces, not
    kept ones an export would take (the sim engine fails on a problem it cannot read)."""
    from reasonfactory.generators.problems.sources import load_problems

    good = load_problems("builtin:arithmetic", limit=60)
    records = [{"question": q, "answer": g} for q, g in zip(*good["question", "gold"], strict=True)]
    records.append({"question": "Name the capital of France.", "answer": "Paris"})
    problems = tmp_path / "p.jsonl"
    problems.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    recipe = eval_recipe(
        {
            "name": "broken",
            "problems": {"source": str(problems)},
            "generate": {"shard_size": 20},
            "runner": {"lookahead": 0},
        }
    )
    with pytest.raises(Exception, match="sim"):
        run_eval(recipe, warehouse_path)
    with Warehouse(warehouse_path, read_only=True) as wh:
        statuses = wh.sql("SELECT status, count(*) AS n FROM traces GROUP BY 1")
        evals = wh.sql("SELECT count(*) AS n FROM evals")["n"][0]
    assert statuses["status"].to_list() == ["eval"] and statuses["n"][0] >= 20, statuses
    assert evals == 0
