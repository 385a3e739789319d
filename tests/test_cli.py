"""The CLI as a user runs it: a subprocess, real files, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_data, write_jsonl

COMMANDS = [
    ["--help"],
    ["demo", "--help"],
    ["run", "--help"],
    ["import", "--help"],
    ["query", "--help"],
    ["export", "--help"],
    ["export", "sft", "--help"],
    ["stats", "--help"],
    ["schedule", "--help"],
    ["check", "steps", "--help"],
    ["check", "answers", "--help"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_has_help(cli, args):
    proc = cli(*args, check=True)
    assert "Usage" in proc.stdout and len(proc.stdout) > 200


def test_demo_then_query_stats_export(cli, tmp_path):
    proc = cli("demo", "--limit", "50", check=True)
    wh = tmp_path / "reasonfactory.duckdb"
    assert wh.exists()
    assert str(wh) in proc.stdout
    assert "funnel: generated 400 -> kept" in proc.stdout
    assert "rejected wrong_answer:" in proc.stdout
    rows = json.loads(
        cli(
            "query",
            "SELECT status, count(*) AS n FROM traces GROUP BY 1",
            "--format",
            "json",
            check=True,
        ).stdout
    )
    assert sum(r["n"] for r in rows) == 400
    stats = cli("stats", check=True).stdout
    assert "funnel:   generated 400 -> format" in stats and "pass@1" in stats
    out = cli("export", "sft", "--out", str(tmp_path / "sft"), check=True).stdout
    kept = next(r["n"] for r in rows if r["status"] == "kept")
    assert f"exported {kept} rows (hf)" in out


def test_query_is_read_only(cli, tmp_path):
    cli(
        "import",
        str(write_jsonl(tmp_path / "p.jsonl", [{"question": "q", "answer": "1"}])),
        check=True,
    )
    proc = cli("query", "DELETE FROM problems")
    assert proc.returncode == 1
    assert "read-only" in proc.stderr and "Traceback" not in proc.stderr
    csv = cli("query", "SELECT count(*) AS n FROM problems", "--format", "csv", check=True).stdout
    assert csv.splitlines() == ["n", "1"]


def test_import_gsm8k_fixture_stores_bare_numbers(cli, tmp_path):
    path = write_jsonl(
        tmp_path / "gsm.jsonl",
        [
            {"question": "How many? A", "answer": "3 + 4 = 7\n#### 7"},
            {"question": "How many? B", "answer": "work\n#### 1,024"},
        ],
    )
    proc = cli("import", str(path), "--answer-format", "gsm8k", "--source", "gsm", check=True)
    assert "2 problems read" in proc.stdout and "2 new" in proc.stdout
    golds = cli("query", "SELECT gold FROM problems ORDER BY gold", "--format", "csv").stdout
    assert golds.splitlines() == ["gold", "1024", "7"]
    again = cli("import", str(path), "--answer-format", "gsm8k", "--source", "gsm", check=True)
    assert "0 new" in again.stdout


def test_import_real_gsm8k(cli):
    path = shared_data("gsm8k_test.jsonl")
    cli("import", str(path), "--answer-format", "gsm8k", check=True)
    rows = json.loads(
        cli(
            "query",
            "SELECT count(*) AS n, count(*) FILTER "
            "(WHERE regexp_full_match(gold, '-?[0-9]+')) AS bare FROM problems",
            "--format",
            "json",
            check=True,
        ).stdout
    )
    assert rows == [{"n": 1319, "bare": 1319}]


def test_malformed_line_3_stores_nothing_and_names_it(cli, tmp_path):
    path = write_jsonl(
        tmp_path / "broken.jsonl",
        [
            {"question": "a", "answer": "#### 1"},
            {"question": "b", "answer": "#### 2"},
            '{"question": "c", "answer": ',
            {"question": "d", "answer": "#### 4"},
        ],
    )
    proc = cli("import", str(path), "--answer-format", "gsm8k")
    assert proc.returncode != 0
    assert "broken.jsonl line 3" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    wh = tmp_path / "reasonfactory.duckdb"
    if wh.exists():
        n = cli("query", "SELECT count(*) AS n FROM problems", "--format", "csv").stdout
        assert n.splitlines()[1] == "0"


def test_unknown_recipe_key_is_named_with_the_allowed_ones(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\nproblems: {source: builtin:linear}\nsamples: 4\n")
    proc = cli("run", str(recipe))
    assert proc.returncode != 0
    assert "unknown key 'samples'" in proc.stderr
    assert "allowed: name, problems, engine, generate, filters" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_run_recipe_file_and_limit(cli, tmp_path):
    recipe = tmp_path / "lin.yaml"
    recipe.write_text(
        "name: linear\nproblems: {source: builtin:linear, limit: 100}\n"
        "engine: {kind: sim, error_rate: 0.1}\ngenerate: {method: self_output, samples: 2}\n"
    )
    proc = cli("run", str(recipe), "--limit", "10", check=True)
    assert "funnel: generated 20 -> kept" in proc.stdout


def test_schedule_without_a_prefect_server_says_how_to_start_one(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: s\nproblems: {source: builtin:linear, limit: 2}\n")
    proc = cli("schedule", str(recipe), "--cron", "* * * * *", env={"PREFECT_API_URL": ""})
    assert proc.returncode == 1
    assert "prefect server start" in proc.stderr and "PREFECT_API_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, shown",
    [
        (["run", "--help"], "filters: [answer, format]"),
        (["refilter", "--help"], "filters: [format, answer, {length"),
    ],
)
def test_help_keeps_square_brackets(cli, args, shown):
    """Rich markup must not eat `[...]` in the examples."""
    text = " ".join(cli(*args, check=True).stdout.split())
    assert " ".join(shown.split()) in text.replace("│", " ").replace("  ", " ")


def test_gsm8k_without_its_answer_format_stores_nothing(cli, tmp_path):
    """`import data/gsm8k_test.jsonl` (no --answer-format) once stored every worked solution
    as the gold; now it is one error naming file, line, field and the option, for `import`
    and for a recipe's `problems.source` alike, and nothing is stored."""
    sample = Path(__file__).resolve().parents[1] / "data" / "gsm8k_test.jsonl"
    proc = cli("import", str(sample))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines() == [
        f"error: {sample} line 1: field 'answer' is a GSM8K worked solution (a '#### ' "
        "final-answer line), not a plain gold; pass --answer-format gsm8k (a recipe: "
        "problems: {answer_format: gsm8k}) to store the number after ####"
    ]
    (tmp_path / "r.yaml").write_text(f"name: g\nproblems: {{source: {sample}}}\n")
    proc = cli("run", "r.yaml")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {sample} line 1: field 'answer' is a GSM8K worked solution")
    )
    wh = tmp_path / "reasonfactory.duckdb"
    if wh.exists():
        counted = cli("query", "SELECT count(*) AS n FROM problems", "--format", "csv").stdout
        assert counted.splitlines() == ["n", "0"]
    cli("import", str(sample), "--answer-format", "gsm8k", check=True)
    golds = cli("query", "SELECT gold FROM problems", "--format", "csv", check=True).stdout
    assert "18" in golds.splitlines() and "####" not in golds
