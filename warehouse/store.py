"""Connect to the DuckDB warehouse, ingest record batches in bulk, and query it.

Ingest takes polars frames (Arrow underneath) and inserts them with one
`INSERT ... SELECT` per batch inside a single transaction, skipping keys already stored:
a failed ingest stores nothing, and ingesting the same rows twice adds nothing.
Rows are never inserted one by one. A run keeps one `Warehouse` open for its whole length
(the schema is checked once) and appends the rows it knows are new (`append`) without
looking for their keys; at each commit it hands the file to processes waiting for it
(`yield_to_waiters`, see `warehouse.locking`).

Not here: table definitions (`warehouse.schema`), exports (`warehouse.export`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from reasonfactory.warehouse import locking
from reasonfactory.warehouse.errors import WarehouseError
from reasonfactory.warehouse.liveness import process_owner
from reasonfactory.warehouse.schema import RUNS, TABLES, VIEWS, Table

DEFAULT_PATH = "reasonfactory.duckdb"
ENV_VAR = "REASONFACTORY_WAREHOUSE"
# Rows per INSERT: one DuckDB row group (122,880 rows; a batch of ~2 KB traces is ~270 MB).
# Inside a transaction an INSERT of whole row groups compresses them and writes them to the
# file as it goes; smaller INSERTs pile up uncompressed in transaction-local memory until
# COMMIT (50,000-row batches of ~2 KB traces: 1.2 GB held per 500k rows, and two thirds of
# the ingest time spent in COMMIT).
BATCH_ROWS = 122_880
# Write-ahead log a writing connection keeps before it checkpoints (see `Warehouse._connect`).
WAL_BEFORE_CHECKPOINT = "1GB"


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The warehouse file: the argument, else $REASONFACTORY_WAREHOUSE, else
    ./reasonfactory.duckdb."""
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)


class Warehouse:
    """A DuckDB warehouse file.

    >>> import tempfile
    >>> with Warehouse(Path(tempfile.mkdtemp()) / "doc.duckdb") as wh:
    ...     wh.ingest("problems", pl.DataFrame({"problem_id": ["p1"], "question": ["1+1?"]}))
    1
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        read_only: bool = False,
        lock_timeout: float | None = None,
    ):
        self.path = resolve_path(path)
        # The connection is shared by a run's threads (generation reads stored samples while
        # the main thread commits): every use goes through this lock.
        self.lock = threading.RLock()
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise WarehouseError(
                f"no warehouse at {self.path}: run `reasonfactory demo` or `reasonfactory run` "
                f"first, or point --warehouse / ${ENV_VAR} at one"
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect()
        # No other process has written since this connection opened (see yield_to_waiters).
        self.exclusive = True
        if not read_only:
            self._create()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = locking.connect(self.path, read_only=self.read_only, timeout=self.lock_timeout)
        if not self.read_only:
            # Small commits (a run's completions, stored as they arrive) go to the write-ahead
            # log; DuckDB's default checkpoints it into the file every 16 MB, and each of those
            # re-compresses the last, partly filled row group: 50 commits of 2,000 completions
            # (~2 KB) took 7.0 s against 3.1 s in one insert; checkpointing every
            # WAL_BEFORE_CHECKPOINT, 3.7 s. The log is checkpointed when the file is closed or
            # handed over anyway.
            con.execute(f"SET checkpoint_threshold = '{WAL_BEFORE_CHECKPOINT}'")
        return con

    def _create(self) -> None:
        for table in TABLES.values():
            self.con.execute(table.ddl())
            self._add_missing_columns(table)
        for view in VIEWS:
            self.con.execute(view)

    def _add_missing_columns(self, table: Table) -> None:
        # A warehouse made by an older version gains new columns; none is ever renamed.
        have = {r[0] for r in self.con.execute(f"DESCRIBE {table.name}").fetchall()}
        for c in table.columns:
            if c.name not in have:
                self.con.execute(f"ALTER TABLE {table.name} ADD COLUMN {c.name} {c.sql_type}")
                if (table.name, c.name) == ("runs", "kind"):
                    # Before `kind`, an eval was told by its name; say it once, in the column.
                    self.con.execute(
                        "UPDATE runs SET kind = CASE WHEN recipe_name LIKE 'eval:%' "
                        "THEN 'eval' ELSE 'data' END"
                    )

    def close(self) -> None:
        self.con.close()

    def yield_to_waiters(self) -> bool:
        """Between two commits: if another process waits for this file, close, let it in, and
        reopen (waiting for it in turn). Returns whether the file was handed over."""
        with self.lock:
            if not locking.others_waiting(self.path):
                return False
            self.con.close()
            self.exclusive = False
            locking.hand_over(self.path)
            self.con = self._connect()
            return True

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def ingest(
        self,
        table: str,
        frames: pl.DataFrame | Iterable[pl.DataFrame],
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> int:
        """Insert rows whose key is not stored yet; return how many were added.

        All batches go in one transaction: if any fails, none is stored.
        """
        return self.ingest_all({table: frames}, batch_rows=batch_rows)[table]

    def ingest_all(
        self,
        tables: dict[str, pl.DataFrame | Iterable[pl.DataFrame]],
        *,
        batch_rows: int = BATCH_ROWS,
        replace: dict[str, tuple[str, ...]] | None = None,
        append: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, int]:
        """Ingest into several tables in one transaction (e.g. traces and their progress rows).

        `replace` maps a table to columns: stored rows sharing those columns' values with the
        new rows are deleted first (a redone problem's traces, by trace_id; its tree, by tree_id).
        `append` names tables whose rows the caller knows are not stored yet (a run's new
        problems, by the progress ledger): they are inserted without looking up their keys,
        which costs a scan of the stored keys per batch.
        """
        with self.lock:
            return self._ingest_all(tables, batch_rows, replace, append)

    def _ingest_all(self, tables, batch_rows, replace, append) -> dict[str, int]:
        added = dict.fromkeys(tables, 0)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table, frames in tables.items():
                spec = TABLES[table]
                for batch in _batches(spec, frames, batch_rows):
                    if replace and table in replace:
                        self._delete_matching(spec, batch, replace[table])
                    added[table] += self._insert_new(spec, batch, check=table not in append)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return added

    def _insert_new(self, spec: Table, batch: pl.DataFrame, check: bool = True) -> int:
        """Insert the rows of a conformed batch whose key is not stored yet (with `check`
        false the caller vouches that none is)."""
        if batch.select(spec.key).is_duplicated().any():
            batch = batch.unique(subset=list(spec.key), keep="first", maintain_order=True)
        cols = ", ".join(spec.names)
        on = " AND ".join(f"b.{k} = t.{k}" for k in spec.key)
        where = f" WHERE NOT EXISTS (SELECT 1 FROM {spec.name} t WHERE {on})" if check else ""
        # Arrow string_view is polars' own layout: no copy (the default export copies every
        # string into large_string). DuckDB finds `_rf_batch` by name (a replacement scan);
        # `register` would make a temporary view whose catalog entry, and the batch with it,
        # lives until the transaction ends, so memory would grow with every batch.
        _rf_batch = batch.to_arrow(compat_level=pl.CompatLevel.newest())  # noqa: F841
        return self.con.execute(
            f"INSERT INTO {spec.name} ({cols}) SELECT {cols} FROM _rf_batch b{where}"
        ).fetchall()[0][0]

    def _delete_matching(self, spec: Table, batch: pl.DataFrame, columns: tuple[str, ...]) -> None:
        on = " AND ".join(f"{spec.name}.{c} = b.{c}" for c in columns)
        _rf_keys = batch.select(columns).unique().to_arrow()  # noqa: F841  (replacement scan)
        self.con.execute(f"DELETE FROM {spec.name} USING _rf_keys b WHERE {on}")

    def update_golds(self, problems: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        """Store the new gold of problems already stored with another one (a corrected answer
        key); a missing new gold never erases one. Returns the changed problems (`problem_id`,
        `old`, `new`) and the runs with traces of them (whose verdicts a refilter renews)."""
        _rf_golds = (
            problems.filter(pl.col("gold").is_not_null())
            .select(  # noqa: F841
                "problem_id", "gold"
            )
            .unique("problem_id")
            .to_arrow()
        )
        self.con.execute("BEGIN TRANSACTION")
        try:
            changed = self.con.sql(
                "SELECT p.problem_id, p.gold AS old, g.gold AS new FROM problems p "
                "JOIN _rf_golds g USING (problem_id) WHERE p.gold IS DISTINCT FROM g.gold "
                "ORDER BY 1"
            ).pl()
            if changed.height:
                self.con.execute(
                    "UPDATE problems SET gold = g.gold FROM _rf_golds g "
                    "WHERE problems.problem_id = g.problem_id "
                    "AND problems.gold IS DISTINCT FROM g.gold"
                )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        _rf_changed = changed.select("problem_id").to_arrow()  # noqa: F841
        runs = [
            r[0]
            for r in self.con.execute(
                "SELECT DISTINCT run_id FROM traces JOIN _rf_changed USING (problem_id) ORDER BY 1"
            ).fetchall()
        ]
        return changed, runs

    def replace(self, table: str, frame: pl.DataFrame) -> int:
        """Overwrite stored rows that share a key with `frame` (used to re-filter traces)."""
        spec = TABLES[table]
        frame = spec.conform(frame)
        on = " AND ".join(f"{spec.name}.{k} = b.{k}" for k in spec.key)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("_rf_batch", frame)
            self.con.execute(f"DELETE FROM {spec.name} USING _rf_batch b WHERE {on}")
            self.con.execute(
                f"INSERT INTO {spec.name} ({', '.join(spec.names)}) "
                f"SELECT {', '.join(spec.names)} FROM _rf_batch"
            )
            self.con.unregister("_rf_batch")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return frame.height

    def start_run(self, run: dict) -> dict | None:
        """Record a run as running: a new row, or the same run resumed. Returns the row the
        run had before (None for a new run): its status, owner and Prefect flow run tell a
        crashed earlier invocation."""
        now = datetime.now(UTC)
        owner = process_owner()  # lets a reader tell a crashed run from a running one
        before = self.sql(
            "SELECT status, owner, flow_run, recipe FROM runs WHERE run_id = ?", [run["run_id"]]
        )
        if before.height:
            self.con.execute(
                "UPDATE runs SET status = 'running', recipe = ?, recipe_name = ?, "
                "finished_at = NULL, owner = ?, kind = ?, flow_run = ? WHERE run_id = ?",
                [
                    run["recipe"],
                    run["recipe_name"],
                    owner,
                    run.get("kind", "data"),
                    run.get("flow_run"),
                    run["run_id"],
                ],
            )
            return before.row(0, named=True)
        row = {**run, "started_at": now, "status": "running", "owner": owner}
        self.ingest("runs", pl.DataFrame([row], schema_overrides=RUNS.polars_schema))
        return None

    def finish_run(self, run_id: str, status: str, meta: str) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, meta = ? WHERE run_id = ?",
            [status, datetime.now(UTC), meta, run_id],
        )

    # -- reading ---------------------------------------------------------------------------

    def lock_down(self, writable: Iterable[str | os.PathLike] = ()) -> None:
        """From now on this connection reaches no file and no network but the warehouse
        itself and the `writable` folders (an export's output): DuckDB's external access off
        (`read_text`, `COPY ... TO`, `ATTACH`, `INSTALL`, `LOAD` fail at once), and its
        configuration locked so SQL cannot turn it back on. Call it before SQL a user wrote
        runs (`query`, `export --where`); the connection stays locked until closed."""
        with self.lock:
            folders = [os.path.join(os.path.abspath(f), "") for f in writable]
            if folders:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in folders)
                self.con.execute(f"SET allowed_directories = [{listed}]")
            self.con.execute("SET enable_external_access = false")
            # nor the Python objects of the calling frames (DuckDB's replacement scans)
            self.con.execute("SET python_enable_replacements = false")
            self.con.execute("SET lock_configuration = true")

    def user_query(self, query: str) -> pl.DataFrame:
        """Run SQL a user wrote (`reasonfactory query`) with no file or network access
        (`lock_down`): statements that only read (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW,
        SUMMARIZE); any other (COPY, ATTACH, SET, PRAGMA, EXPLAIN ANALYZE ...) is an error."""
        self.lock_down()
        try:
            statements = self.con.extract_statements(query)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from None
        for st in statements:
            if st.type != duckdb.StatementType.SELECT:
                raise WarehouseError(
                    f"query is read-only: {st.type.name} statements are not allowed, only "
                    "statements that read (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE)"
                )
        return self.sql(query)

    def sql(self, query: str, params: list | None = None) -> pl.DataFrame:
        """Run a query and return a polars frame."""
        try:
            with self.lock:
                # DuckDB 2.0: execute() results have no .pl(); sql() takes params
                rel = self.con.sql(query, params=params) if params else self.con.sql(query)
                if rel is None:  # a statement with no result (SET, PRAGMA ...), or nothing at all
                    raise WarehouseError(f"query returned no result set: {query[:80]!r}")
                return rel.pl()
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from exc

    def existing_keys(self, table: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The rows of `keys` (key columns of `table`) that are already stored."""
        spec = TABLES[table]
        on = " AND ".join(f"k.{c} = t.{c}" for c in spec.key)
        self.con.register("_rf_keys", keys)
        try:
            return self.con.sql(
                f"SELECT k.* FROM _rf_keys k WHERE EXISTS (SELECT 1 FROM {spec.name} t WHERE {on})"
            ).pl()
        finally:
            self.con.unregister("_rf_keys")

    def fetch(self, table: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The stored rows of `table` whose key matches a row of `keys` (its key columns)."""
        spec = TABLES[table]
        on = " AND ".join(f"k.{c} = t.{c}" for c in spec.key)
        _rf_keys = keys.select(spec.key).unique().to_arrow()  # noqa: F841  (replacement scan)
        with self.lock:
            return self.con.sql(f"SELECT t.* FROM {spec.name} t JOIN _rf_keys k ON {on}").pl()

    def count(self, table: str) -> int:
        # fetchall, not fetchone: DuckDB 2 keeps an unfinished result and blocks the connection
        return self.con.execute(f"SELECT count(*) FROM {TABLES[table].name}").fetchall()[0][0]


def _batches(
    spec: Table, frames: pl.DataFrame | Iterable[pl.DataFrame], size: int
) -> Iterator[pl.DataFrame]:
    """Conformed batches of exactly `size` rows (the last may be short), across frames.

    Small frames are gathered (without copying) so every INSERT is large; big ones are sliced.
    """
    if isinstance(frames, pl.DataFrame):
        frames = [frames]
    pending: list[pl.DataFrame] = []
    n = 0
    for frame in frames:
        if frame.height == 0:
            continue
        frame = spec.conform(frame)
        while frame.height:
            part = frame.slice(0, size - n)
            pending.append(part)
            n += part.height
            frame = frame.slice(part.height)
            if n == size:
                yield pl.concat(pending, rechunk=False)
                pending, n = [], 0
    if pending:
        yield pl.concat(pending, rechunk=False)
