"""Benchmark ingest on the flow's real path against one bulk `Warehouse.ingest` of the same rows.

Runs the generate flow (sim engine, self_output, `--traces` traces, default 200,000) into a
fresh warehouse and times every ingest the flow does for its shards (traces, progress and
completions, batched commits on the run's one connection). The sim writes ~200
characters per trace; a wrapper pads each completion's thought with ~1,800 characters of
seeded, random step lines (numbers differ per sample, so compression does not flatter it),
so traces are ~2,000 characters as the issue asks. Then, in the same run:

  bulk       the same rows (read back from the flow's warehouse) in one `Warehouse.ingest_all`
             of traces + progress + completions into a fresh file
  per-shard  main's path before this change, replayed shard by shard on the same rows: a new
             `Warehouse` per shard (schema DDL, DESCRIBE, views), key lookups for every insert,
             completions DELETE-replaced (skip with --skip-main)

Target: flow path >= 0.8x the rows/s of bulk. This prints numbers; it is not a test.

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

import polars as pl  # noqa: E402
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
    ap.add_argument("--skip-main", action="store_true", help="skip main's per-shard replay")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-ingest-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)

    make_engine = flow_module.make_engine
    flow_module.make_engine = lambda config: Padded(make_engine(config), args.pad)
    timed = {"seconds": 0.0, "shards": 0}
    ingest_all = Warehouse.ingest_all

    def timed_ingest(self, tables, **kw):
        start = time.perf_counter()
        try:
            return ingest_all(self, tables, **kw)
        finally:
            if "traces" in tables:
                timed["seconds"] += time.perf_counter() - start
                timed["shards"] += 1

    Warehouse.ingest_all = timed_ingest
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
    Warehouse.ingest_all = ingest_all
    with Warehouse(flow_db, read_only=True) as wh:
        tables = {t: wh.sql(f"SELECT * FROM {t}") for t in ("traces", "progress", "completions")}
        chars = wh.sql("SELECT avg(length(thought) + length(response)) AS c FROM traces")["c"][0]
    n = tables["traces"].height
    flow_rate = n / timed["seconds"]
    print(
        f"flow run: {n:,} traces (~{chars:,.0f} chars each), {timed['shards']} commits, "
        f"{wall:.1f} s wall, {summary['engine_seconds']:.1f} s in the engine"
    )
    print(
        f"  flow path ingest (batched commits, one connection): {timed['seconds']:.2f} s "
        f"= {flow_rate:,.0f} traces/s"
    )

    with Warehouse(tmp / "bulk.duckdb") as wh:
        t0 = time.perf_counter()
        wh.ingest_all(tables)
        bulk = time.perf_counter() - t0
    bulk_rate = n / bulk
    print(
        f"  bulk Warehouse.ingest_all of the same rows:           {bulk:.2f} s "
        f"= {bulk_rate:,.0f} traces/s"
    )

    if not args.skip_main:
        old = _replay_main(tmp / "main.duckdb", tables, recipe.generate.shard_size)
        print(
            f"  main's per-shard path replayed on the same rows:      {old:.2f} s "
            f"= {n / old:,.0f} traces/s"
        )
    ratio = flow_rate / bulk_rate
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"flow path / bulk = {ratio:.2f}x (target >= {TARGET}x): {verdict}")


def _replay_main(db: Path, tables: dict[str, pl.DataFrame], shard_size: int) -> float:
    """Main's ingest_shard before this change: a new Warehouse per shard, checked inserts,
    completions DELETE-replaced."""
    traces, progress, completions = tables["traces"], tables["progress"], tables["completions"]
    keys = traces.select("problem_id", key=pl.col("meta").str.json_path_match("$.request_key"))
    order = progress["problem_id"].to_list()
    total = 0.0
    for start in range(0, len(order), shard_size):
        ids = pl.Series(order[start : start + shard_size])
        shard_traces = traces.filter(pl.col("problem_id").is_in(ids.implode()))
        req = keys.filter(pl.col("problem_id").is_in(ids.implode()))["key"]
        t0 = time.perf_counter()
        with Warehouse(db) as wh:
            wh.ingest_all(
                {
                    "traces": shard_traces,
                    "progress": progress.filter(pl.col("problem_id").is_in(ids.implode())),
                    "completions": completions.filter(pl.col("request_key").is_in(req.implode())),
                },
                replace={"completions": ("request_key",)},
            )
        total += time.perf_counter() - t0
    return total


if __name__ == "__main__":
    main()
