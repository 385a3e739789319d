"""Benchmark warehouse ingest against DuckDB's row-by-row and whole-table Arrow paths.

Generates `--rows` synthetic `traces` rows (default 1,000,000) with ~2,000-character thoughts
whose steps carry random numbers, so compression and dictionaries do not flatter the result.
Rows are made lazily, batch by batch, from a seed: the same arguments give the same rows.

Each path runs in its own subprocess, into its own fresh DuckDB file under a temp dir, and
reports its own peak RSS:

  warehouse   `Warehouse(path).ingest("traces", frames)` fed by a generator of frames
  rerun       the same rows ingested again into that warehouse (must add 0 rows)
  executemany `INSERT INTO traces VALUES (?, ...)` on a sample of `--executemany-rows`
  arrow       all rows as one in-memory Arrow table, `INSERT INTO traces SELECT * FROM tbl`

Times exclude generating the rows (measured separately and subtracted). This prints numbers;
it is not a test and asserts nothing.

    .venv/bin/python bench/bench_ingest.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]

from reasonfactory.warehouse.schema import TRACES  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

MEMORY_LIMIT = None  # --memory-limit, applied to every path's DuckDB connection
TARGET_VS_EXECUTEMANY = 20.0
TARGET_VS_ARROW = 0.8
STEPS = 40  # step slots per thought; each row uses 26-40 of them (~1,500-2,500 chars)
VERBS = [
    "Multiply {a} by {b} to get {c}",
    "Add {a} and {b}, which gives {c}",
    "Subtract {b} from {a}; the difference is {c}",
    "Divide {a} by {b}, keeping the quotient {c}",
    "Check: {a} minus {b} should equal {c}",
    "Carry the partial sum {a} plus {b} forward as {c}",
    "Rewrite {a} as {b} times something, so the factor is {c}",
    "Square {a} modulo {b} and note the remainder {c}",
    "Compare {a} with {b}: the gap is {c}",
    "Substitute x = {a} into {b}x and get {c}",
    "Hmm, wait: recompute {a} + {b} carefully, it is {c}",
    "Take {a} percent of {b}, roughly {c}",
]


def progress(label: str, done: int, total: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed else 0.0
    print(
        f"  [{label}] {done:>9,}/{total:,} rows  {elapsed:7.1f} s  {rate:9,.0f} rows/s", flush=True
    )


def make_batch(start: int, n: int, seed: int) -> pl.DataFrame:
    """Rows start..start+n of the synthetic trace set; same (start, n, seed), same rows."""
    rng = np.random.default_rng([seed, start])
    n_steps = rng.integers(26, STEPS + 1, n)
    steps = []
    for k in range(STEPS):
        verb = rng.integers(0, len(VERBS), n)
        a, b = rng.integers(10, 1_000_000, n), rng.integers(2, 100_000, n)
        c = rng.integers(0, 10**9, n)
        text = pl.concat_str(
            pl.lit(f"Step {k + 1}: "),
            pl.Series(VERBS)
            .gather(verb)
            .str.replace("{a}", pl.Series(a).cast(pl.String), literal=True)
            .str.replace("{b}", pl.Series(b).cast(pl.String), literal=True)
            .str.replace("{c}", pl.Series(c).cast(pl.String), literal=True),
            pl.lit(".\n"),
        )
        steps.append(pl.when(pl.lit(pl.Series(n_steps)) > k).then(text).otherwise(pl.lit("")))
    ids = np.arange(start, start + n, dtype=np.uint64)
    # splitmix64 finaliser: a bijection, so ids are unique and look random.
    with np.errstate(over="ignore"):
        z = (ids + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    answer = rng.integers(0, 100_000, n)
    correct = rng.random(n) < 0.8
    frame = pl.DataFrame(
        {
            "trace_id": pl.Series(z).cast(pl.String).str.zfill(20),
            "problem_id": pl.Series(ids // 8).cast(pl.String).str.zfill(12),
            "answer": answer,
            "correct": correct,
            "n_tokens": rng.integers(300, 900, n),
            "score": rng.random(n),
            "sample": ids % 8,
            "logprob": -rng.random(n) * 200,
        }
    ).with_columns(
        trace_id="t_" + pl.col("trace_id"),
        problem_id="p_" + pl.col("problem_id"),
    )
    return frame.select(
        "trace_id",
        "problem_id",
        run_id=pl.lit("r_bench0000000000"),
        method=pl.lit("self_output"),
        model=pl.lit("sim"),
        thought=pl.concat_str(steps),
        response=pl.concat_str(pl.lit("So the answer is \\boxed{"), "answer", pl.lit("}.")),
        predicted=pl.col("answer").cast(pl.String),
        correct="correct",
        n_tokens="n_tokens",
        lang=pl.lit("en"),
        status=pl.when("correct").then(pl.lit("kept")).otherwise(pl.lit("rejected")),
        reject_reason=pl.when("correct").then(pl.lit(None)).otherwise(pl.lit("wrong_answer")),
        score="score",
        created_at=pl.lit(datetime(2026, 11, 22, tzinfo=UTC)),
        meta=pl.concat_str(
            pl.lit('{"fingerprint":"f0","sample_index":'),
            "sample",
            pl.lit(',"samples":8,"finish_reason":"stop","cumulative_logprob":'),
            "logprob",
            pl.lit(',"temperature":0.8,"seed":0}'),
        ),
    ).cast(TRACES.polars_schema)


class Frames:
    """A generator of frames that counts the time spent making them (to subtract it)."""

    def __init__(self, rows: int, batch: int, seed: int, label: str):
        self.rows, self.batch, self.seed, self.label = rows, batch, seed, label
        self.gen_seconds = self.gen_cpu = 0.0
        self.started = time.perf_counter()

    def __iter__(self) -> Iterator[pl.DataFrame]:
        every = max(self.rows // 10, self.batch)
        for start in range(0, self.rows, self.batch):
            if start and start % every < self.batch:
                progress(self.label, start, self.rows, self.started)
            t0, c0 = time.perf_counter(), time.process_time()
            frame = make_batch(start, min(self.batch, self.rows - start), self.seed)
            self.gen_seconds += time.perf_counter() - t0
            self.gen_cpu += time.process_time() - c0
            yield frame


class Heartbeat:
    """Prints elapsed time every few seconds while one long statement runs."""

    def __init__(self, label: str, every: float = 10.0):
        self.label, self.every = label, every
        self.stop = threading.Event()

    def __enter__(self):
        started = time.perf_counter()

        def beat():
            while not self.stop.wait(self.every):
                print(
                    f"  [{self.label}] still running, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )

        self.thread = threading.Thread(target=beat, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


# -- the paths, each run in a child process ---------------------------------------------------


def limit_memory(con) -> None:
    if MEMORY_LIMIT:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")


def path_warehouse(db: str, rows: int, batch: int, seed: int, label: str) -> dict:
    frames = Frames(rows, batch, seed, label)
    t0 = time.perf_counter()
    with Warehouse(db) as wh:
        limit_memory(wh.con)
        opened, c0 = time.perf_counter(), time.process_time()
        added = wh.ingest("traces", frames)
        ingested, cpu = time.perf_counter(), time.process_time() - c0 - frames.gen_cpu
        stored = wh.count("traces")
    closed = time.perf_counter()
    ingest_s = ingested - opened - frames.gen_seconds
    return {
        "rows": rows,
        "added": added,
        "stored": stored,
        "seconds": ingest_s,
        "cpu_seconds": cpu,
        "gen_seconds": frames.gen_seconds,
        "open_seconds": opened - t0,
        "close_seconds": closed - ingested,
    }


def path_executemany(db: str, rows: int, batch: int, seed: int, label: str) -> dict:
    import duckdb

    t0 = time.perf_counter()
    data = make_batch(0, rows, seed).rows()
    gen = time.perf_counter() - t0
    con = duckdb.connect(db)
    limit_memory(con)
    con.execute(TRACES.ddl())
    sql = f"INSERT INTO traces VALUES ({', '.join('?' * len(TRACES.columns))})"
    chunk = max(rows // 10, 1)
    started, c0 = time.perf_counter(), time.process_time()
    con.execute("BEGIN TRANSACTION")
    for i in range(0, rows, chunk):
        con.executemany(sql, data[i : i + chunk])
        progress(label, min(i + chunk, rows), rows, started)
    con.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - c0
    stored = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    con.close()
    return {
        "rows": rows,
        "added": stored,
        "stored": stored,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "gen_seconds": gen,
    }


def path_arrow(db: str, rows: int, batch: int, seed: int, label: str) -> dict:
    import duckdb
    import pyarrow as pa

    t0 = time.perf_counter()
    parts = []
    for start in range(0, rows, batch):
        # compat_level=oldest: plain large_string columns, DuckDB's most direct Arrow scan.
        parts.append(
            make_batch(start, min(batch, rows - start), seed).to_arrow(
                compat_level=pl.CompatLevel.oldest()
            )
        )
        done = start + len(parts[-1])
        if done % max(rows // 10, batch) < batch or done == rows:
            progress(label + " gen", done, rows, t0)
    arrow_tbl = pa.concat_tables(parts)
    del parts
    gen = time.perf_counter() - t0
    print(f"  [{label}] arrow table: {arrow_tbl.nbytes / 2**30:.2f} GiB; inserting", flush=True)
    con = duckdb.connect(db)
    limit_memory(con)
    con.execute(TRACES.ddl())
    started, c0 = time.perf_counter(), time.process_time()
    with Heartbeat(label):
        added = con.execute("INSERT INTO traces SELECT * FROM arrow_tbl").fetchone()[0]
    seconds, cpu = time.perf_counter() - started, time.process_time() - c0
    stored = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    t1 = time.perf_counter()
    con.close()
    return {
        "rows": rows,
        "added": added,
        "stored": stored,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "gen_seconds": gen,
        "close_seconds": time.perf_counter() - t1,
    }


PATHS = {
    "warehouse": path_warehouse,
    "rerun": path_warehouse,
    "executemany": path_executemany,
    "arrow": path_arrow,
}


def child(args: argparse.Namespace) -> None:
    global MEMORY_LIMIT
    MEMORY_LIMIT = args.memory_limit
    result = PATHS[args.child](args.db, args.rows, args.batch, args.seed, args.child)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["db_mib"] = Path(args.db).stat().st_size / 2**20
    Path(args.result).write_text(json.dumps(result))


def run_child(name: str, db: Path, rows: int, args: argparse.Namespace, tmp: Path) -> dict:
    print(f"\n== {name}: {rows:,} rows -> {db.name} (own process)", flush=True)
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable, __file__, "--child", name, "--db", str(db), "--rows", str(rows),
        "--batch", str(args.batch), "--seed", str(args.seed), "--result", str(out),
        *(["--memory-limit", args.memory_limit] if args.memory_limit else []),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    r = json.loads(out.read_text())
    r["rate"] = r["rows"] / r["seconds"]
    print(
        f"  {name}: added {r['added']:,} (stored {r['stored']:,}) in {r['seconds']:.2f} s "
        f"({r['cpu_seconds']:.1f} s CPU) = {r['rate']:,.0f} rows/s; generating rows took "
        f"{r['gen_seconds']:.1f} s (excluded); peak RSS {r['peak_rss_mib']:,.0f} MiB; "
        f"file {r['db_mib']:,.0f} MiB; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return r


def best(runs: list[dict]) -> dict:
    """The fastest run (the least disturbed by other work), with the highest peak RSS seen."""
    r = dict(min(runs, key=lambda r: r["seconds"]))
    r["peak_rss_mib"] = max(x["peak_rss_mib"] for x in runs)
    r["times"] = [x["seconds"] for x in runs]
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows for warehouse and arrow paths")
    p.add_argument("--executemany-rows", type=int, default=10_000, help="rows for executemany")
    p.add_argument("--batch", type=int, default=50_000, help="rows per generated frame")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--memory-limit",
        help="DuckDB memory_limit for every path, e.g. 1GB (default: DuckDB's, 80%% of RAM; "
        "DuckDB keeps written blocks cached up to it, which shows as RSS)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per path; the fastest is reported")
    p.add_argument("--skip-arrow", action="store_true", help="skip the whole-table Arrow path")
    p.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    sample = make_batch(0, 1000, args.seed)
    lens = sample["thought"].str.len_chars()
    print(
        f"ingest benchmark: {args.rows:,} traces rows, frames of {args.batch:,}, seed {args.seed}; "
        f"thought length mean {lens.mean():,.0f} chars (min {lens.min():,}, max {lens.max():,}); "
        f"executemany on {args.executemany_rows:,} rows; {args.repeat} run(s) per path; "
        f"DuckDB memory_limit {args.memory_limit or 'default'}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"first thought begins: {sample['thought'][0][:120]!r}")
    runs: dict[str, list[dict]] = {name: [] for name in PATHS}
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as d:
        tmp = Path(d)
        for i in range(args.repeat):
            for name in PATHS:
                if name == "arrow" and args.skip_arrow:
                    continue
                db = tmp / f"{'warehouse' if name == 'rerun' else name}{i}.duckdb"
                rows = args.executemany_rows if name == "executemany" else args.rows
                runs[name].append(run_child(name, db, rows, args, tmp))
                if name in ("rerun", "executemany", "arrow"):
                    db.unlink()
    res = {name: best(r) for name, r in runs.items() if r}
    wh, rerun, em, arrow = res["warehouse"], res["rerun"], res["executemany"], res.get("arrow")

    print(f"\n== summary (fastest of {args.repeat}; load average now {os.getloadavg()[0]:.1f})")
    print(
        f"  {'path':<18}{'rows':>11}{'added':>11}{'seconds':>9}{'CPU s':>8}{'rows/s':>10}"
        f"{'peak RSS':>13}"
    )
    labels = {"warehouse": "warehouse", "rerun": "rerun (same rows)",
              "executemany": "executemany", "arrow": "arrow (1 table)"}  # fmt: skip
    for name, r in res.items():
        print(
            f"  {labels[name]:<18}{r['rows']:>11,}{r['added']:>11,}{r['seconds']:>9.2f}"
            f"{r['cpu_seconds']:>8.1f}{r['rate']:>10,.0f}{r['peak_rss_mib']:>9,.0f} MiB"
        )
    ratio_em = wh["rate"] / em["rate"]
    ok = "meets" if ratio_em >= TARGET_VS_EXECUTEMANY else "MISSES"
    print(
        f"  warehouse / executemany = {ratio_em:,.1f}x  "
        f"(target >= {TARGET_VS_EXECUTEMANY:g}x: {ok}; executemany measured on {em['rows']:,} rows)"
    )
    cpu_per_row = {name: r["cpu_seconds"] / r["rows"] for name, r in res.items()}
    by_cpu = (
        f"warehouse / executemany = {cpu_per_row['executemany'] / cpu_per_row['warehouse']:,.1f}x"
    )
    if arrow:
        by_cpu += f", warehouse / arrow = {cpu_per_row['arrow'] / cpu_per_row['warehouse']:.2f}"
        ratio_ar = wh["rate"] / arrow["rate"]
        ok = "meets" if ratio_ar >= TARGET_VS_ARROW else "MISSES"
        print(f"  warehouse / arrow       = {ratio_ar:.2f}  (target >= {TARGET_VS_ARROW:g}: {ok})")
        print(
            f"  peak RSS warehouse {wh['peak_rss_mib']:,.0f} MiB vs arrow "
            f"{arrow['peak_rss_mib']:,.0f} MiB ({wh['peak_rss_mib'] / arrow['peak_rss_mib']:.0%})"
        )
    print(f"  by CPU seconds per row (less sensitive to other load on the machine): {by_cpu}")
    verdict = "ok" if all(r["added"] == 0 for r in runs["rerun"]) else "WRONG"
    print(
        f"  second ingest of the same {rerun['rows']:,} rows added "
        f"{max(r['added'] for r in runs['rerun']):,} ({verdict}) in {rerun['seconds']:.2f} s"
    )
    if args.repeat > 1:
        for name, r in res.items():
            print(f"  {labels[name]} times: {', '.join(f'{t:.2f}' for t in r['times'])} s")


if __name__ == "__main__":
    main()
