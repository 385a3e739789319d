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
