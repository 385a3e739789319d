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

Target: the flow's storing path >= 0.8x the rows/s of bulk. This prints numbers; it is not
a test. The engine is the sim (a simulator, not a model): what is timed is storage.

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
from reasonfactory.generators.engines.base import SampleFeed  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

TARGET = 0.8
SAMPLES = 8
WORDS = ["carry", "check", "rewrite", "compare", "subtract", "multiply", "note", "recompute"]


class Padded:
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
    timed = {"ingest_shards": 0.0, "journal": 0.0, "commits": 0, "flushes": 0}
    ingest = committer.ingest_shards.fn
    flush = committer.CompletionJournal.flush

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

    close = Warehouse.close

    def timed_close(self):  # the run's last checkpoint: its data is in the file after this
        start = time.perf_counter()
        try:
            return close(self)
        finally:
            if not self.read_only:
                timed["close"] = timed.get("close", 0.0) + time.perf_counter() - start

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
            "runner": {"lookahead": args.lookahead},
        }
    )
    flow_db = tmp / "flow.duckdb"
    t0 = time.perf_counter()
    summary = flow_module.run_recipe(recipe, str(flow_db))
    wall = time.perf_counter() - t0
    committer.ingest_shards.fn = ingest
    committer.CompletionJournal.flush = flush
    Warehouse.close = close
    with Warehouse(flow_db, read_only=True) as wh:
        tables = {t: wh.sql(f"SELECT * FROM {t}") for t in ("traces", "progress", "completions")}
        chars = wh.sql("SELECT avg(length(thought) + length(response)) AS c FROM traces")["c"][0]
    n = tables["traces"].height
    stored = timed["ingest_shards"] + timed["journal"] + timed.get("close", 0.0)
    flow_rate = n / stored
    print(
        f"flow run: {n:,} traces (~{chars:,.0f} chars each), {wall:.1f} s wall, "
        f"{summary['engine_seconds']:.1f} s in the engine (sim)"
    )
    print(
        f"  committer: ingest_shards {timed['ingest_shards']:.2f} s in {timed['commits']} "
        f"commits + completion journal {timed['journal']:.2f} s in {timed['flushes']} flushes "
        f"+ closing (last checkpoint) {timed.get('close', 0.0):.2f} s"
    )
    print(f"  flow storing path, whole: {stored:.2f} s = {flow_rate:,.0f} traces/s")

    wh = Warehouse(tmp / "bulk.duckdb")
    t0 = time.perf_counter()
    wh.ingest_all(tables)
    wh.close()  # its checkpoint too: both sides are timed until the rows are in the file
    bulk = time.perf_counter() - t0
    bulk_rate = n / bulk
    print(f"  bulk Warehouse.ingest_all of the same rows: {bulk:.2f} s = {bulk_rate:,.0f} traces/s")
    ratio = flow_rate / bulk_rate
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"flow storing path / bulk = {ratio:.2f}x (target >= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
