"""What a run stores, and when: completions as they arrive, finished shards in batches.

Two paths into the run's one warehouse connection:
- `CompletionJournal`: every completion an engine returns is stored within
  `runner.journal_seconds` (5) of its arrival (its own small transaction, from a background
  thread), before the shard it belongs to is finished. A paid teacher reply is never lost to
  a kill: a re-run serves it from the `completions` table (generators/engines/cached.py)
  instead of asking again.
- `Committer`: finished shards (traces, tree nodes, the progress ledger's rows) are stored
  together in one transaction every `runner.commit_seconds` or `BATCH_ROWS` traces, in the
  order they finish (progress is per problem, so order does not matter for resume). On a
  failure or a Ctrl-C, `close(failing=True)` stores what is finished without Prefect's task
  machinery, which sees the interrupt too.

So `kill -9` loses at most `journal_seconds` of completions and `commit_seconds` of filtered
work, and the rerun filters again what it lost instead of generating it again.

Not here: generating or filtering (flows/shards.py), scheduling shards (flows/runners.py).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import polars as pl
from prefect import task
from prefect.cache_policies import NONE
from reasonfactory.flows.shards import ShardResult
from reasonfactory.warehouse.store import BATCH_ROWS, Warehouse


class CompletionJournal:
    """Completions rows in, stored within `every` seconds by a background thread. `replace`:
    a new row replaces a stored one with its key (a sample stored cut off, asked again with
    a larger budget); otherwise a row whose key is stored is skipped."""

    def __init__(self, wh: Warehouse, replace: bool, every: float):
        self.wh = wh
        self.replace = replace
        self.every = max(every, 0.05)  # 0: as they come (checked 20 times a second)
        self.stored = 0
        self._rows: list[dict] = []
        self._frames: list[pl.DataFrame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="completion-journal", daemon=True)
        self._thread.start()

    def add(self, rows: list[dict] | pl.DataFrame) -> None:
        """Take completions rows (from any thread); stored within `every` seconds."""
        with self._lock:
            if isinstance(rows, pl.DataFrame):
                if rows.height:
                    self._frames.append(rows)
            else:
                self._rows.extend(rows)

    def flush(self) -> None:
        """Store what is waiting now (raises what a background flush raised)."""
        with self._lock:
            rows, frames = self._rows, self._frames
            self._rows, self._frames = [], []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if rows:
            from reasonfactory.warehouse.schema import COMPLETIONS

            frames.append(pl.DataFrame(rows, schema=COMPLETIONS.polars_schema))
        if not frames:
            return
        replace = {"completions": ("request_key",)} if self.replace else None
        added = self.wh.ingest_all({"completions": frames}, replace=replace)
        self.stored += added["completions"]

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.flush()
            except BaseException as exc:  # kept for the run's own thread to raise
                self._error = exc
                return

    def close(self) -> None:
        """Stop the thread and store the rest."""
        self._stop.set()
        self._thread.join()
        self.flush()


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def ingest_shards(
    wh: Warehouse, batch: list[ShardResult], recipe, run_id: str, redo: frozenset[str]
) -> int:
    """Store finished shards in one transaction (their traces, nodes and progress rows
    together). Rows of problems the ledger said were new are appended without key lookups
    while this run has had the file to itself since it read the ledger; once it handed the
    file over (another run may have stored the same problems), every insert skips stored
    keys. A redone problem's rows replace its stored ones, never duplicate them."""
    tables: dict[str, list[pl.DataFrame]] = {"traces": [], "nodes": [], "progress": []}
    for r in batch:
        tables["traces"].append(r.traces)
        if r.nodes is not None:
            tables["nodes"].append(r.nodes)
        tables["progress"].append(progress_rows(r, recipe, run_id))
    replace: dict[str, tuple[str, ...]] = {}
    if redo and any(r.problems["problem_id"].is_in(list(redo)).any() for r in batch):
        replace.update(
            traces=("trace_id",),
            nodes=("tree_id",),
            progress=("fingerprint", "method", "problem_id"),
        )
    append = set(tables) - set(replace) if wh.exclusive else set()
    return wh.ingest_all(tables, replace=replace, append=append)["traces"]


def progress_rows(result: ShardResult, recipe, run_id: str) -> pl.DataFrame:
    """The shard's `progress` rows: its problems are done, with how many traces, cut off or
    failed, and the completion tokens spent on each (generated now, or served stored)."""
    traces = result.traces
    finish = pl.col("finish_reason") if "finish_reason" in traces.columns else pl.lit(None)
    counts = traces.group_by("problem_id").agg(
        n=pl.len(),
        n_truncated=(finish == "length").sum(),
        n_failed=(finish == "error").sum(),
    )
    return (
        result.problems.select("problem_id")
        .join(counts, on="problem_id", how="left")
        .join(result.tokens, on="problem_id", how="left")
        .select(
            fingerprint=pl.lit(recipe.fingerprint),
            method=pl.lit(recipe.generate.method),
            problem_id=pl.col("problem_id"),
            run_id=pl.lit(run_id),
            n_traces=pl.col("n").fill_null(0),
            finished_at=pl.lit(datetime.now(UTC)),
            max_tokens=pl.lit(getattr(recipe.generate, "max_tokens", None), pl.Int64),
            n_truncated=pl.col("n_truncated").fill_null(0),
            n_failed=pl.col("n_failed").fill_null(0),
            tokens_generated=pl.col("tokens_generated").fill_null(0),
            tokens_reused=pl.col("tokens_reused").fill_null(0),
            tokens_prompt=pl.col("tokens_prompt"),
        )
    )


class Committer:
    """Owns what the run stores: the completion journal, the batch of finished shards, when
    a batch is committed, and what is stored when the run fails. Also the run's counts."""

    def __init__(self, wh: Warehouse, recipe, run_id: str, redo: set[str], lookups: bool, log):
        self.wh, self.recipe, self.run_id, self.log = wh, recipe, run_id, log
        self.redo = frozenset(redo)
        self.journal = CompletionJournal(
            wh, replace=lookups or bool(redo), every=recipe.runner.journal_seconds
        )
        self.batch: list[ShardResult] = []
        self.last_commit = time.monotonic()
        self.generated = self.kept = self.reused = self.tokens_reused = 0
        self.reasons: Counter = Counter()

    def add(self, result: ShardResult) -> None:
        """A finished shard: stored at the next commit (now, when one is due)."""
        self.journal.add(result.completions)  # a Ray replica's, stored as they come back
        self.batch.append(result)
        self.generated += result.traces.height
        self.kept += result.kept
        self.reused += result.reused
        self.tokens_reused += int(result.tokens["tokens_reused"].sum() or 0)
        self.reasons.update(r for r in result.traces["reject_reason"].to_list() if r)
        rows = sum(r.traces.height for r in self.batch)
        if rows >= BATCH_ROWS or time.monotonic() - self.last_commit >= self.commit_seconds:
            self.commit()
        self.wh.yield_to_waiters()  # another run or a reader waits: let it in between shards

    @property
    def commit_seconds(self) -> float:
        return self.recipe.runner.commit_seconds

    def commit(self, failing: bool = False) -> None:
        """Store the batch (completions first: everything its traces came from is stored)."""
        if failing:
            self._quietly(self.journal.flush)
        else:
            self.journal.flush()
        if not self.batch:
            return
        # While a failure or a Ctrl-C unwinds, store without Prefect's task machinery (it
        # sees the interrupt too and may not run the task): the plain function, same rows.
        ingest = ingest_shards.fn if failing else ingest_shards
        stored = ingest(self.wh, self.batch, self.recipe, self.run_id, self.redo)
        # -- committed point: every shard in the batch is stored (traces, progress) --
        self.log.info("stored %d shards: %d traces", len(self.batch), stored)
        self.batch.clear()
        self.last_commit = time.monotonic()

    def close(self, failing: bool = False) -> None:
        """Store everything finished and stop the journal. While a failure unwinds, what
        cannot be stored is logged, never raised over the run's own error."""
        if not failing:
            self.commit()
            self.journal.close()
            return
        self._quietly(lambda: self.commit(failing=True))
        self._quietly(self.journal.close)

    def _quietly(self, step) -> None:
        try:
            step()
        except Exception as exc:
            self.log.warning("while stopping the run, could not store: %r", exc)
