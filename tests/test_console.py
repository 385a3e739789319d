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


def test_the_generate_flow_reports_each_committed_shard(prefect_api, warehouse_path):
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.progress import Reporter, installed
    from reasonfactory.flows.recipe import parse_recipe

    class Recorder(Reporter):
        def __init__(self):
            super().__init__()
            self.totals_asked, self.shards = [], []

        def start(self, total, label):
            self.totals_asked.append(total)

        def advance(self, problems=0, traces=0, kept=0, tokens=0):
            super().advance(problems, traces, kept, tokens)
            self.shards.append(problems)

    recipe = {
        "name": "progress",
        "problems": {"source": "builtin:arithmetic", "limit": 10},
        "generate": {"method": "self_output", "samples": 2, "shard_size": 4},
    }
    with installed(Recorder()) as rec:
        summary = run_recipe(parse_recipe(recipe), str(warehouse_path))
    # one report per committed shard, in the order they finish (shards overlap: the short
    # last one may be stored before the one ahead of it)
    assert rec.totals_asked == [10] and sorted(rec.shards) == [2, 4, 4]
    t = rec.totals()
    assert (t["traces"], t["kept"]) == (summary["generated"], summary["kept"])
    assert t["tokens"] > 0


def test_the_rich_bar_shows_rates_and_eta_on_a_terminal():
    import io

    from reasonfactory.flows.progress import RichReporter
    from rich.console import Console

    buffer = io.StringIO()
    bar = RichReporter(Console(file=buffer, force_terminal=True, width=160))
    bar.start(10, "generate demo")
    bar.advance(problems=4, traces=32, kept=16, tokens=3200)
    bar.bar.refresh()
    bar.stop()
    shown = buffer.getvalue()
    assert "generate demo" in shown and "4/10" in shown
    assert "traces/s" in shown and "kept 50%" in shown and "tok/s" in shown and "ETA" in shown


def test_an_error_inside_a_flow_is_one_error_line(cli, tmp_path):
    # A bad problem file is read inside the flow's load task: Prefect once logged the failed
    # task ("Finished in state Failed(...ProblemSourceError...)") above the CLI's own line.
    (tmp_path / "p.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n{bad json\n')
    (tmp_path / "r.yaml").write_text(
        "name: e\nproblems: {source: p.jsonl}\nengine: {kind: sim}\n"
        "generate: {method: self_output, samples: 1}\n"
    )
    proc = cli("run", "r.yaml", env=LOUD)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 1
    assert lines == [
        "error: p.jsonl line 2: not valid JSON (Expecting property name enclosed in double "
        "quotes at column 2)"
    ], lines
