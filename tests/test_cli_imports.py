"""Light commands import only what they use: `--help`, `query`, `stats` and `check steps`
load neither Prefect nor sympy nor scipy nor an engine's stack (issue #26: `--help` took
5.4 s when every command imported the flows, math-verify's sympy and datasketch's scipy)."""

import subprocess
import sys

import pytest
from reasonfactory.warehouse.store import Warehouse

HEAVY = ("prefect", "sympy", "scipy", "torch", "vllm", "ray", "transformers", "datasets")

# Runs the real entry point in a fresh interpreter, then says which heavy modules it loaded.
PROBE = f"""
import sys
sys.argv = ["reasonfactory", *sys.argv[1:]]
from reasonfactory.flows.cli import main
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("LOADED", [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["query", "SELECT count(*) FROM traces", "-w", "w.duckdb"],
        ["stats", "-w", "w.duckdb"],
        ["check", "steps", "steps.jsonl"],
    ],
    ids=["help", "run-help", "query", "stats", "check-steps"],
)
def test_a_light_command_imports_no_heavy_module(tmp_path, args):
    Warehouse(tmp_path / "w.duckdb").con.close()
    (tmp_path / "steps.jsonl").write_text('{"text": "2 + 3 = 5\\n5 * 4 = 20"}\n')
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED")]
    assert loaded == ["LOADED []"], proc.stderr[-2000:]
