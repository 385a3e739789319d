"""SQL a user writes (`query`, `export --where`) reaches the warehouse and nothing else: no
file read or written, no extension installed, no network. DuckDB's external access is off
and its configuration locked for those connections (`Warehouse.lock_down`); `query` runs
only statements that read. Run as a user runs them: a subprocess on a real DuckDB file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.export_tree import export_prm
from reasonfactory.warehouse.schema import NODES, TRACES
from reasonfactory.warehouse.store import Warehouse

READ_PASSWD = "(SELECT count(*) FROM read_text('/etc/passwd')) > 0"


@pytest.fixture()
def warehouse(tmp_path) -> Path:
    path = tmp_path / "wh.duckdb"
    rows = [
        {"trace_id": f"t{i}", "problem_id": "p", "run_id": "r", "method": "m", "status": "kept",
         "thought": "1 + 1 = 2", "response": "\\boxed{2}"}
        for i in range(2)
    ]  # fmt: skip
    nodes = [
        {"tree_id": "tr", "node_id": "0", "problem_id": "p", "run_id": "r", "depth": 0,
         "text": "What is 1 + 1?", "is_terminal": False, "q_value": 1.0},
        {"tree_id": "tr", "node_id": "0.1", "parent_id": "0", "problem_id": "p", "run_id": "r",
         "depth": 1, "text": "1 + 1 = 2", "is_terminal": True, "correct": True, "q_value": 1.0},
    ]  # fmt: skip
    with Warehouse(path) as wh:
        wh.ingest("problems", load_problems("builtin:arithmetic", limit=1).with_columns(
            problem_id=pl.lit("p")))  # fmt: skip
        wh.ingest("traces", TRACES.conform(pl.DataFrame(rows)))
        wh.ingest("nodes", NODES.conform(pl.DataFrame(nodes)))
    return path


def _query(sql: str, warehouse: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "query",
         "-w", str(warehouse), "--format", "csv", sql],
        capture_output=True, text=True, cwd=warehouse.parent, timeout=120,
    )  # fmt: skip


def _refused(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_query_reads_the_warehouse_and_nothing_else(warehouse, tmp_path):
    assert _query("SELECT count(*) AS n FROM sft", warehouse).stdout.split() == ["n", "2"]
    assert "trace_id" in _query("DESCRIBE traces", warehouse).stdout
    target = tmp_path / "stolen.csv"
    _refused(_query(f"COPY (SELECT * FROM traces) TO '{target}'", warehouse), "COPY")
    _refused(_query(f"SELECT 1; COPY (SELECT 1) TO '{warehouse}.wal'", warehouse), "COPY")
    assert not target.exists() and not Path(f"{warehouse}.wal").exists()
    _refused(_query("SELECT * FROM read_text('/etc/passwd')", warehouse), "Permission Error")
    _refused(_query("SELECT * FROM read_csv('https://example.com/x.csv')", warehouse), "Permis")
    _refused(_query(f"ATTACH '{tmp_path / 'other.duckdb'}' AS o", warehouse), "ATTACH")
    _refused(_query("SET enable_external_access = true", warehouse), "SET")
    started = time.monotonic()
    _refused(_query("INSTALL httpfs", warehouse), "not allowed")
    assert time.monotonic() - started < 60  # refused, not a download that times out
    assert not (tmp_path / "other.duckdb").exists()


def test_a_locked_connection_cannot_reach_files_even_with_sql_that_could(warehouse, tmp_path):
    """The layer under `query`'s statement check: DuckDB itself refuses, at once."""
    with Warehouse(warehouse, read_only=True) as wh:
        wh.lock_down()
        assert wh.sql("SELECT count(*) AS n FROM sft_all")["n"][0] == 2
        for sql in (
            f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'",
            "SELECT * FROM read_text('/etc/passwd')",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
        ):
            started = time.monotonic()
            with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
                wh.con.execute(sql)
            assert time.monotonic() - started < 5, sql  # no network attempt
        secret = pl.DataFrame({"token": ["hunter2"]})  # noqa: F841  (in DuckDB's reach?)
        with pytest.raises(duckdb.CatalogException):  # Python replacement scans are off too
            wh.con.execute("SELECT * FROM secret")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("export", [export_sft, export_prm], ids=["sft", "prm"])
def test_an_export_where_reaches_no_file(warehouse, tmp_path, export):
    out = tmp_path / "out"
    for where in (READ_PASSWD, "length(getenv('HOME')) > 0"):
        with pytest.raises(UserError) as info:
            export(warehouse, out, where=where, fmt="jsonl")
        assert "Permission Error" in str(info.value) or "getenv" in str(info.value)
        assert not out.exists()
    done = export(warehouse, out, where="TRUE", fmt="parquet")  # its own folder: writable
    assert done["rows"] >= 1 and (out / "data.parquet").exists()
