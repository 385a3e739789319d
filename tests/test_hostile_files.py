"""Hostile recipes, problem files and CLI calls: each is one named error (file, line, field)
or a documented acceptance, never a traceback, a hang or a partial store."""

from __future__ import annotations

import resource

import polars as pl
import pytest
from reasonfactory.flows.recipe import load_recipe
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.schema import TRACES
from reasonfactory.warehouse.store import Warehouse

BASE = b"name: t\nproblems: {source: builtin:arithmetic, limit: 5%s}\n"


def _bomb() -> bytes:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\nname: *i\nproblems: {source: builtin:arithmetic}\n").encode()


RECIPES = [
    ("not-utf8", b"name: t\xff\nproblems: {source: builtin:arithmetic}\n", r"line 1: not UTF-8"),
    ("reversed", BASE % b", difficulty: [6, 2]", r"difficulty \[6, 2\] is reversed"),
    ("negative", BASE % b", difficulty: [-3, -1]", r"outside builtin:arithmetic's range"),
    ("out-of-range", BASE % b", difficulty: [50, 60]", r"outside builtin:arithmetic's range"),
    (
        "max-tokens",
        b"name: t\nproblems: {source: builtin:arithmetic}\ngenerate: {max_tokens: 1"
        + b"0" * 20
        + b"}\n",
        r"generate.max_tokens: 1000.* is too large",
    ),
    ("max-tokens-float", BASE % b"}\ngenerate: {max_tokens: 1e20", r"generate.max_tokens"),
    ("huge-limit", BASE.replace(b"5", b"1000000000") % b"", r"at most 1000000 problems"),
    ("limit-1e9", BASE.replace(b"5", b"1e9") % b"", r"problems.limit: .*'1e9'"),
    ("duplicate-key", b"name: t\nname: u\nproblems: {source: x.jsonl}\n", r"line 2: .*'name'"),
    ("inf", BASE % b"}\ngenerate: {temperature: .inf", r"generate.temperature: .*finite"),
    ("tiny-timeout", BASE % b"}\nfilters: [{answer: {timeout_s: 1e-9}}]\nx: {y: 1", r"timeout_s"),
    ("yaml-bomb", _bomb(), r"line 2: .*alias \*a .*not allowed"),
    ("surrogate", b'name: "\\ud800"\nproblems: {source: builtin:arithmetic}\n', r"udfff escape"),
]


@pytest.mark.parametrize(("raw", "match"), [c[1:] for c in RECIPES], ids=[c[0] for c in RECIPES])
def test_a_bad_recipe_is_one_named_error(tmp_path, raw, match):
    path = tmp_path / "r.yaml"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=match) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and len(str(info.value)) < 400


def test_recipe_edge_cases_that_are_fine_or_named(tmp_path):
    (tmp_path / "r.yaml").write_bytes(b"\xef\xbb\xbf" + BASE % b"")  # a BOM is fine
    assert load_recipe(tmp_path / "r.yaml").problems.limit == 5
    with pytest.raises(UserError, match="is a folder"):
        load_recipe(tmp_path)


def test_an_error_message_never_shows_a_huge_value(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: t\nproblems: {source: builtin:arithmetic, seed: " + "9" * 5000 + "}\n")
    with pytest.raises(UserError) as info:
        load_recipe(path)
    assert len(str(info.value)) < 400


GOOD = b'{"question": "What is 1+1?", "answer": "2"}\n'
FILES = [
    ("not-utf8", GOOD + b'{"question": "caf\xe9", "answer": "1"}\n', r"line 2: not UTF-8"),
    (
        "deep",
        GOOD + b'{"question": "q", "answer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        r"line 2: nested too deeply",
    ),
    ("surrogate", GOOD + b'{"question": "a \\ud800 b", "answer": "1"}\n', r"line 2: .*surrogate"),
    (
        "conflicting-golds",
        GOOD + b'{"question": "What is 1+1?", "answer": "3"}\n',
        r"line 2: the same question as .*line 1 with a different gold \('3' vs '2'\)",
    ),
    ("gold-true", GOOD + b'{"question": "q", "answer": true}\n', r"line 2: field 'answer'.*true"),
    ("gold-list", GOOD + b'{"question": "q", "answer": [1, 2]}\n', r"line 2: .*JSON list"),
    ("gold-nan", GOOD + b'{"question": "q", "answer": NaN}\n', r"line 2: .*NaN"),
    ("gold-inf", GOOD + b'{"question": "q", "answer": Infinity}\n', r"line 2: .*Infinity"),
]


@pytest.mark.parametrize(("raw", "match"), [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_a_bad_problem_file_is_one_named_error(tmp_path, raw, match):
    path = tmp_path / "p.jsonl"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=match):
        load_problems(str(path))


def test_problem_file_edge_cases(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD + GOOD)  # a BOM; a repeat with the same gold
    assert load_problems(str(path))["gold"].to_list() == ["2"]
    for limit in (0, -1):
        with pytest.raises(UserError, match=f"limit {limit}: expected a positive"):
            load_problems(str(path), limit=limit)
    # 100k openings of \boxed{ in a gold: a quick named error, not minutes of parsing.
    path.write_text('{"question": "q", "answer": "' + "\\\\boxed{" * 100_000 + '"}\n')
    with pytest.raises(UserError, match="no gold answer in answer_format 'boxed'"):
        load_problems(str(path), answer_format="boxed")


def test_a_where_cannot_escape_its_parentheses(tmp_path):
    rows = [
        {
            "trace_id": f"t{i}",
            "problem_id": "p",
            "run_id": "r",
            "method": "m",
            "status": s,
            "thought": "1+1=2",
            "response": "\\boxed{2}",
        }
        for i, s in enumerate(["kept", "rejected"])
    ]
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ingest(
            "problems",
            load_problems("builtin:arithmetic", limit=1).with_columns(problem_id=pl.lit("p")),
        )
        wh.ingest("traces", TRACES.conform(pl.DataFrame(rows)))
    for where in ("1=1) OR (1=1", "1=1; DELETE FROM traces", "1=1 -- ", "(1=1", "'a"):
        with pytest.raises(UserError, match="--where"):
            export_sft(tmp_path / "wh.duckdb", tmp_path / "out", where=where, fmt="jsonl")
    done = export_sft(tmp_path / "wh.duckdb", tmp_path / "out", where="(1=1)", fmt="jsonl")
    assert done["rows"] == 1  # only the kept trace


def test_the_yaml_bomb_costs_no_memory(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(_bomb())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError):
        load_recipe(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


CALLS = [
    (["query", ""], "empty SQL"),
    (["schedule", "r.yaml", "--cron", "junk"], "--cron 'junk': not a cron expression"),
    (["run", "r.yaml", "--limit", "0"], "--limit 0: expected a positive"),
    (["run", "r.yaml", "--limit", "-5"], "--limit -5: expected a positive"),
    (["import", "p.jsonl", "--limit", "0"], "--limit 0: expected a positive"),
    (["import", "p.jsonl", "--limit", "-1"], "--limit -1: expected a positive"),
]


@pytest.mark.slow
def test_bad_cli_calls_are_one_error_line(cli, tmp_path):
    (tmp_path / "r.yaml").write_bytes(BASE % b"")
    (tmp_path / "p.jsonl").write_bytes(GOOD)
    for args, message in CALLS:
        proc = cli(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines() == [f"error: {proc.stderr.strip()[7:]}"]
        assert message in proc.stderr and "Traceback" not in proc.stderr, args
    assert not (tmp_path / "reasonfactory.duckdb").exists()  # nothing ran, nothing stored


@pytest.mark.slow
def test_a_user_error_inside_the_flow_prints_no_traceback(cli, tmp_path):
    (tmp_path / "p.jsonl").write_bytes(GOOD + b'{"question": "q", "answer": true}\n')
    (tmp_path / "r.yaml").write_text("name: t\nproblems: {source: p.jsonl}\n")
    proc = cli("run", "r.yaml", env={"PREFECT_LOGGING_LEVEL": "INFO"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("error: p.jsonl line 2: field 'answer'")
