"""Decontamination: n-gram overlap with benchmark files, the filter and the report."""

from __future__ import annotations

import json

import pytest
from conftest import shared_data, write_jsonl
from reasonfactory.filters.decontam import decontam_filter, find_contamination, load_benchmarks
from reasonfactory.warehouse.errors import UserError
from trace_fixtures import ENGLISH, make_traces

BENCH = [
    {"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates."},
    {"problem": "Compute $\\dbinom{16}{5}$."},
]


def test_filter_rejects_traces_of_a_contaminated_problem(tmp_path):
    bench = write_jsonl(tmp_path / "mybench.jsonl", BENCH)
    clean = make_traces([ENGLISH, ENGLISH], problem_ids=["a", "a"])
    dirty = make_traces(
        [ENGLISH],
        problem_ids=["b"],
        question="Please convert the point (0, 3) in rectangular coordinates to polar form.",
    )
    import polars as pl

    df = pl.concat([clean, dirty.with_columns(trace_id=pl.lit("t9"))])
    v = decontam_filter(df, {"benchmarks": [str(bench)]})
    assert v["reason"].to_list() == [None, None, "contaminated"]
    hit = v["detail"][2]
    assert hit == {
        "benchmark": "mybench",
        "row": 0,
        "ngram": "convert the point 0 3 in rectangular coordinates",
    }


def test_short_questions_match_whole_and_fields_are_named(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"q": r["problem"]} for r in BENCH])
    index = load_benchmarks((str(bench),), 8, ("q",))
    hits = find_contamination(["Compute $\\binom{16}{5}$!", "Compute \\dbinom{16}{5}."], index)
    assert hits[0] is None and hits[1].row == 1
    with pytest.raises(UserError, match="line 1: no question field .*fields present: q"):
        load_benchmarks((str(bench),), 8)
    with pytest.raises(UserError, match="no such file"):
        load_benchmarks((str(tmp_path / "missing.jsonl"),), 8)


def _questions(path, field):
    return [json.loads(line)[field] for line in path.read_text().splitlines() if line.strip()]


def test_math500_against_itself_flags_all_500():
    path = shared_data("math500.jsonl")
    index = load_benchmarks((str(path),))
    hits = find_contamination(_questions(path, "problem"), index)
    assert sum(h is not None for h in hits) == 500
    assert {h.benchmark for h in hits} == {"math500"}


def test_gsm8k_against_math500_and_aime_flags_almost_none():
    bench = tuple(str(shared_data(n)) for n in ("math500.jsonl", "aime24.jsonl", "aime25.jsonl"))
    index = load_benchmarks(bench)
    hits = find_contamination(_questions(shared_data("gsm8k_test.jsonl"), "question"), index)
    assert sum(h is not None for h in hits) <= 5


def test_cli_report_names_the_benchmark(cli, tmp_path):
    path = shared_data("math500.jsonl")
    proc = cli(
        "decontam", str(path), "-b", str(path), "--out", str(tmp_path / "r.jsonl"), check=True
    )
    assert "contaminated: 500 (math500 500)" in proc.stdout
    first = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert first["benchmark"] == "math500" and len(first["ngram"].split()) == 8
