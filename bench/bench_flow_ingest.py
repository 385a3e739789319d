"""Benchmark the flow's storing path, whole, against one bulk `Warehouse.ingest_all`.

Runs the generate flow (sim engine, self_output, `--traces` traces, default 200,000) into a
fresh warehouse and times everything the run's committer does to store it
(flows/committer.py): every `ingest_shards` call whole (building the progress rows, the
transaction of traces + progress, the commit) and every flush of the completion journal
(each completion stored within a second of its arrival). The sim writes ~200 characters
per trace; a wrapper pads each completion's thought with ~1,800 characters of seeded,
random step lines (numbers differ per sample, so compression does not flatter it), so
traces are ~2,000 characters. Then, in the same invocation, the same rows (read back from
the flow's warehouse) go into a fresh file in one bulk `Warehouse.ingest_all` of traces +
progress + completions: the fastest the database takes them. Both sides are timed until
the rows are in the file (DuckDB's checkpoint at close included: a small commit goes to
its write-ahead log first, and the checkpoint moves it into the file later).

The flow runs twice: with the default `runner.journal_seconds` (5: every reply is stored
within 5 s, in its own small transaction) and with 300 (replies wait for their shard's
commit, as before replies were stored as they arrive). Targets: the batched storing path >=
0.8x the rows/s of bulk, and storing replies within 5 s at most 1.1x the batched run's wall.
This prints numbers; it is not a test. The engine is the sim (a simulator, not a model, here
~3,000 completions/s, far faster than a teacher): what is timed is storage.

    .venv/bin/python bench/bench_flow_ingest.py --traces 200000
"""

from __future__ import annotations

import argparse
import atexit
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import isolate_prefect

isolate_prefect()

from reasonfactory.flows import committer, runners  # noqa: E402
from reasonfactory.flows import generate as flow_module  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402
from reasonfactory.generators.engines.base import SampleFeed, WholeBatches  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

TARGET = 0.8
WALL_TARGET = 1.1  # storing replies within seconds may cost at most 10% of a fast run's wall
DURABLE, BATCHED = "replies stored within 5 s (default)", "replies batched"
WARM_UP = {"name": "warm-up", "problems": {"source": "builtin:arithmetic", "limit": 4}}
SAMPLES = 8
WORDS = ["carry", "check", "rewrite", "compare", "subtract", "multiply", "note", "recompute"]


class Padded(WholeBatches):
    """Wraps the sim engine: each completion's thought gains ~1,800 characters of seeded,
    random step lines (the answer and the format stay the sim's)."""

    def __init__(self, engine, chars: int):
        self.engine, self.model, self.chars = engine, engine.model, chars

    def generate(self, requests, on_sample=None):
        out = self.engine.generate(requests)  # padded below, then handed to on_sample
        for req, completions in zip(requests, out, strict=True):
            for k, c in enumerate(completions):
                rng = random.Random(f"{req.seed}-{req.first_sample + k}-{req.prompt}{req.messages}")
                pad = []
                while sum(map(len, pad)) < self.chars:
                    a, b = rng.randrange(10, 10**6), rng.randrange(2, 10**5)
                    pad.append(f"Let me {rng.choice(WORDS)} {a} and {b}: {a * b % 10**9}.\n\n")
                text = c.text.replace("<think>\n", "<think>\n" + "".join(pad), 1)
                completions[k] = replace(c, text=text)
        feed = SampleFeed(on_sample)
        feed.send_all(out)
        feed.raise_first()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=int, default=200_000)
    ap.add_argument("--pad", type=int, default=1800, help="characters added to each thought")
    ap.add_argument("--lookahead", type=int, default=None, help="runner.lookahead (0: no overlap)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-ingest-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    make_engine = runners.make_engine
    runners.make_engine = lambda config: Padded(make_engine(config), args.pad)

    # Prefect's temporary API starts with the first flow: in neither timed run.
    flow_module.run_recipe(parse_recipe(WARM_UP), str(tmp / "warm-up.duckdb"))
    runs = {}
    for label, journal in ((DURABLE, 5.0), (BATCHED, 300.0)):
        runs[label] = _flow(args, tmp / f"flow-{int(journal)}.duckdb", journal)
    wall, stored, n, tables = runs[BATCHED]
    wh = Warehouse(tmp / "bulk.duckdb")
    t0 = time.perf_counter()
    wh.ingest_all(tables)
    wh.close()  # its checkpoint too: both sides are timed until the rows are in the file
    bulk = time.perf_counter() - t0
    print(f"bulk Warehouse.ingest_all of the same rows: {bulk:.2f} s = {n / bulk:,.0f} traces/s")
    ratio = bulk / stored
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"flow storing path ({BATCHED}) / bulk = {ratio:.2f}x (target >= {TARGET}x): {verdict}")
    durable_wall, durable_stored = runs[DURABLE][:2]
    print(
        f"storing replies within 5 s costs {durable_stored - stored:+.2f} s of storing and "
        f"{durable_wall / wall:.2f}x the wall of batching them (target <= {WALL_TARGET}x): "
        f"{'PASS' if durable_wall / wall <= WALL_TARGET else 'FAIL'}"
    )


def _flow(args, flow_db: Path, journal_seconds: float):
    """One flow run, its committer's storing path timed whole; returns (wall, storing
    seconds, traces, the stored tables)."""
    timed = {"ingest_shards": 0.0, "journal": 0.0, "commits": 0, "flushes": 0, "close": 0.0}
    ingest = committer.ingest_shards.fn
    flush = committer.CompletionJournal.flush
    close = Warehouse.close

    def timed_ingest(*a, **kw):  # the committer's whole step, as the flow calls it
        start = time.perf_counter()
        try:
            return ingest(*a, **kw)
        finally:
            timed["ingest_shards"] += time.perf_counter() - start
            timed["commits"] += 1

    def timed_flush(self):
        start = time.perf_counter()
        try:
            return flush(self)
        finally:
            timed["journal"] += time.perf_counter() - start
            timed["flushes"] += 1

    def timed_close(self):  # the run's last checkpoint: its data is in the file after this
        start = time.perf_counter()
        try:
            return close(self)
        finally:
            if not self.read_only:
                timed["close"] += time.perf_counter() - start

    committer.ingest_shards.fn = timed_ingest
    committer.CompletionJournal.flush = timed_flush
    Warehouse.close = timed_close
    recipe = parse_recipe(
        {
            "name": "bench-ingest",
            "problems": {"source": "builtin:arithmetic", "limit": args.traces // SAMPLES},
            "engine": {"kind": "sim"},
            "generate": {"method": "self_output", "samples": SAMPLES, "seed": 0},
            "filters": ["format"],
            "runner": {"lookahead": args.lookahead, "journal_seconds": journal_seconds},
        }
    )
    t0 = time.perf_counter()
    try:
        summary = flow_module.run_recipe(recipe, str(flow_db))
    finally:
        committer.ingest_shards.fn = ingest
        committer.CompletionJournal.flush = flush
        Warehouse.close = close
    wall = time.perf_counter() - t0
    with Warehouse(flow_db, read_only=True) as wh:
        tables = {t: wh.sql(f"SELECT * FROM {t}") for t in ("traces", "progress", "completions")}
        chars = wh.sql("SELECT avg(length(thought) + length(response)) AS c FROM traces")["c"][0]
    n = tables["traces"].height
    stored = timed["ingest_shards"] + timed["journal"] + timed["close"]
    print(
        f"flow run, journal_seconds {journal_seconds:g}: {n:,} traces (~{chars:,.0f} chars "
        f"each), {wall:.1f} s wall, {summary['engine_seconds']:.1f} s in the engine (sim)"
    )
    print(
        f"  committer: ingest_shards {timed['ingest_shards']:.2f} s in {timed['commits']} "
        f"commits + completion journal {timed['journal']:.2f} s in {timed['flushes']} flushes "
        f"+ closing (last checkpoint) {timed['close']:.2f} s = {stored:.2f} s "
        f"({n / stored:,.0f} traces/s)"
    )
    return wall, stored, n, tables


if __name__ == "__main__":
    main()
