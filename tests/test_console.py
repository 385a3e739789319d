"""The console a user sees: no Prefect per-task lines unless --verbose, one summary block."""

from __future__ import annotations

# As a user's shell would have it: Prefect's INFO lines on unless the CLI quiets them.
LOUD = {"PREFECT_LOGGING_LEVEL": "INFO"}


def test_default_output_has_no_prefect_task_lines_verbose_brings_them_back(cli, tmp_path):
    quiet = cli("demo", "--limit", "10", env=LOUD, check=True)
    both = quiet.stdout + quiet.stderr
    assert "Task run" not in both and "Flow run" not in both and "Finished in state" not in both
    assert both.count("funnel: generated 80 -> kept") == 1
    assert "Traceback" not in both
    loud = cli("--verbose", "demo", "--limit", "10", env=LOUD, check=True)
    assert "Flow run '" in loud.stderr + loud.stdout
    assert "Finished in state Completed()" in loud.stderr + loud.stdout


def test_export_draws_no_datasets_progress_bars(cli, tmp_path):
    cli("demo", "--limit", "5", check=True)
    proc = cli("export", "sft", "--out", str(tmp_path / "sft"), check=True)
    assert "exported" in proc.stdout
    assert "examples/s" not in proc.stderr and "Saving the dataset" not in proc.stderr


def test_query_tables_fit_any_terminal_width(cli, tmp_path):
    from conftest import write_jsonl
    from rich.cells import cell_len

    long = "A train leaves at 9:00.\nIt runs 240 km " + "and then some more " * 10 + "?"
    rows = [
        {"question": long, "answer": "3"},
        {"question": "小明有 5 个苹果，吃了 2 个？", "answer": "3"},
    ]
    cli("import", str(write_jsonl(tmp_path / "p.jsonl", rows)), check=True)
    for width in (20, 40, 80, 132):
        proc = cli(
            "query",
            "SELECT * FROM problems ORDER BY gold, question",
            env={"COLUMNS": str(width)},
            check=True,
        )
        lines = proc.stdout.rstrip("\n").split("\n")
        assert max(cell_len(line) for line in lines) <= width, (width, proc.stdout)
        assert len(lines) == 5 + (width < 30)  # header, types, rule, 2 rows (+ left-out columns)
        assert lines[0].startswith("pro")
    assert "A train leaves at 9:00.⏎It runs" in proc.stdout and "…" in proc.stdout
