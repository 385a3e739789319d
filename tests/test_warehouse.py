"""The warehouse: bulk ingest in one transaction, keys skipped, read-only queries."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from reasonfactory.warehouse.errors import WarehouseError
from reasonfactory.warehouse.schema import TABLES
from reasonfactory.warehouse.store import Warehouse


def _problems(ids, question="q"):
    return pl.DataFrame(
        {"problem_id": ids, "source": "s", "question": [f"{question}{i}" for i in ids]}
    )


def test_tables_have_the_contract_columns(warehouse_path):
    contract = {
        "problems": "problem_id source question gold meta",
        "runs": "run_id recipe_name recipe fingerprint started_at finished_at status",
        "traces": "trace_id problem_id run_id method model thought response predicted correct "
        "n_tokens lang status reject_reason score created_at meta",
        "nodes": "tree_id node_id parent_id problem_id run_id depth text is_terminal correct "
        "visits q_value mc_value",
    }
    with Warehouse(warehouse_path) as wh:
        for table, cols in contract.items():
            have = set(wh.sql(f"SELECT * FROM {table} LIMIT 0").columns)
            assert set(cols.split()) <= have, table
            assert set(TABLES[table].names) == have


def test_ingest_skips_stored_keys_and_duplicates_within_a_batch(warehouse_path):
    with Warehouse(warehouse_path) as wh:
        assert wh.ingest("problems", _problems(["a", "b", "a"])) == 2
        assert wh.ingest("problems", _problems(["a", "b", "c"], question="other")) == 1
        stored = wh.sql("SELECT problem_id, question FROM problems ORDER BY 1")
    # The first stored version of a key wins; nothing is overwritten.
    assert stored.rows() == [("a", "qa"), ("b", "qb"), ("c", "otherc")]


def test_ingest_is_one_transaction_across_batches(warehouse_path):
    def frames():
        yield _problems(["a", "b"])
        raise RuntimeError("source broke mid-way")

    with Warehouse(warehouse_path) as wh:
        with pytest.raises(RuntimeError):
            wh.ingest("problems", frames())
        assert wh.count("problems") == 0
        assert wh.ingest_all(
            {
                "problems": _problems(["x"]),
                "traces": pl.DataFrame({"trace_id": ["t"], "problem_id": ["x"]}),
            }
        ) == {"problems": 1, "traces": 1}


def test_ingest_batches_large_frames(warehouse_path):
    ids = [f"p{i}" for i in range(1000)]
    with Warehouse(warehouse_path) as wh:
        assert wh.ingest("problems", _problems(ids), batch_rows=64) == 1000
        assert wh.ingest("problems", _problems(ids), batch_rows=64) == 0


def test_read_only_cannot_write_and_missing_file_is_clear(warehouse_path, tmp_path):
    with Warehouse(warehouse_path) as wh:
        wh.ingest("problems", _problems(["a"]))
    with Warehouse(warehouse_path, read_only=True) as ro:
        assert ro.count("problems") == 1
        with pytest.raises((WarehouseError, duckdb.Error)):
            ro.con.execute("DELETE FROM problems")
    with pytest.raises(WarehouseError, match="no warehouse at"):
        Warehouse(tmp_path / "nope.duckdb", read_only=True)
