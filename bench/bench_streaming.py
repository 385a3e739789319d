"""Benchmark the streaming generate flow against a heavy-tailed OpenAI-compatible server.

A local teacher server (tests/teacher_server.py, its own process) answers every request after a
lognormal delay: median `--median` (200 ms), sigma `--sigma` (1.2: p99 ~3.3 s), drawn from a
seed of the `a + b` asked, so every path below waits the same delays. `--requests` problems
(2,000, one sample each, `distill` with the `openai` engine, `--concurrency` 64), three ways,
in the same run:

  asyncio     a plain aiohttp client keeping `concurrency` requests in flight (the ceiling)
  streaming   the flow as it runs by default (the next shard starts whenever fewer than
              `concurrency` requests wait for one of the engine's slots, so the slots stay
              full across shard boundaries while shards wait on their slowest replies)
  by-shard    the flow shard by shard (`runner: {lookahead: 0, commit_seconds: 0}`: today's
              path before streaming: a shard waits for its slowest reply)

Flow times are the flow's own `seconds` (load, generate, filter, store), after a warm-up run
that starts Prefect's API. `--requests 2000 20000` (the default) runs both sizes, each with
`--reps` (3) alternating asyncio/streaming repetitions, medians compared; by-shard runs once
at the smaller size. At the smaller size the process wall of `reasonfactory run` (a fresh
CLI process, the local Prefect server already up as for any command after the first) is
compared with the bare client as its own script. Targets: streaming >= 0.95x asyncio at
both sizes, >= 2x by-shard, process wall <= 1.5x the bare client's. This prints numbers; it
is not a test.

Measured (2 cores, load average 1.2-1.9): 2,000 requests asyncio 21.0 s, streaming 21.9 s
(0.96x), by-shard 59.6 s (2.72x), process wall 26.1 s against 21.4 s (1.22x); 20,000
requests asyncio 134.4 s, streaming 136.9 s (0.98x). What is left of the gap at 2,000:
~0.2 s before the first request, ~0.4 s after the last reply (filter the last shards,
store), and the flow's extra CPU slowing replies on a busy machine; the process wall adds
the CLI's start (imports, the server check) and its exit.

    .venv/bin/python bench/bench_streaming.py
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import isolate_prefect, teacher

isolate_prefect()

import aiohttp  # noqa: E402
from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402


def _question(i: int) -> str:
    return f"What is {i} + {i % 97}?"


async def _plain(base_url: str, n: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def one(i: int) -> None:
            body = {
                "model": "teacher",
                "messages": [{"role": "user", "content": _question(i)}],
                "max_tokens": 256,
            }
            async with limit, s.post(base_url + "/chat/completions", json=body) as r:
                assert r.status == 200
                await r.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0


def _flow(base_url, problems: Path, n: int, concurrency: int, runner: dict, db: Path, shard: int):
    recipe = parse_recipe(
        {
            "name": f"bench-stream-{db.stem}",
            "problems": {"source": str(problems), "limit": n},
            "engine": {
                "kind": "openai",
                "model": "teacher",
                "base_url": base_url,
                "concurrency": concurrency,
            },
            "generate": {
                "method": "distill",
                "samples": 1,
                "max_tokens": 256,
                "shard_size": shard,
            },
            "filters": ["format", "answer"],
            "runner": runner,
        }
    )
    summary = run_recipe(recipe, str(db))
    assert summary["engine_completions"] == n, summary
    return summary["seconds"]


# The bare client as its own script: aiohttp alone, the same requests as `_plain`.
_BARE = """
import asyncio, sys, time
import aiohttp

async def main(base_url, n, concurrency):
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(i):
            body = {"model": "teacher", "max_tokens": 256,
                    "messages": [{"role": "user", "content": f"What is {i} + {i % 97}?"}]}
            async with limit, s.post(base_url + "/chat/completions", json=body) as r:
                assert r.status == 200
                await r.json()
        await asyncio.gather(*(one(i) for i in range(n)))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


_CLI = [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()"]


def _process_walls(base_url: str, problems: Path, n: int, c: int, k: int, tmp: Path):
    """Process start to exit: `reasonfactory run` (the CLI a user runs; the local Prefect
    server already up, as for any command after the first) against the bare client's script."""
    recipe = tmp / "cli.yaml"
    recipe.write_text(
        json.dumps(
            {
                "name": "bench-stream-cli",
                "problems": {"source": str(problems), "limit": n},
                "engine": {
                    "kind": "openai",
                    "model": "teacher",
                    "base_url": base_url,
                    "concurrency": c,
                },  # fmt: skip
                "generate": {
                    "method": "distill",
                    "samples": 1,
                    "max_tokens": 256,
                    "shard_size": k,
                },  # fmt: skip
                "filters": ["format", "answer"],
            }
        )
    )
    db = tmp / f"cli{time.monotonic_ns()}.duckdb"
    t0 = time.perf_counter()
    subprocess.run([*_CLI, "run", str(recipe), "-w", str(db)], check=True, capture_output=True)
    flow = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _BARE, base_url, str(n), str(c)], check=True)
    return flow, time.perf_counter() - t0


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--reps", type=int, default=3, help="alternating repetitions per size")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--median", type=float, default=0.2, help="median reply delay, seconds")
    ap.add_argument("--sigma", type=float, default=1.2, help="lognormal sigma of the delay")
    ap.add_argument("--shard-size", type=int, default=256, help="distill's default: 256")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-stream-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    c, k = args.concurrency, args.shard_size
    big = max(args.requests)
    problems = tmp / "problems.jsonl"
    problems.write_text(
        "".join(
            json.dumps({"question": _question(i), "answer": str(i + i % 97)}) + "\n"
            for i in range(big)
        ),
    )
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    with teacher(args.median, args.sigma) as base_url:
        _flow(base_url, problems, 8, c, {}, tmp / "warmup.duckdb", k)  # starts Prefect's API
        for n in args.requests:
            delays = sorted(
                args.median * math.exp(args.sigma * random.Random(f"{i} + {i % 97}").gauss(0, 1))
                for i in range(n)
            )
            print(
                f"{n} requests: lognormal reply delay, median {args.median * 1000:.0f} ms, sigma "
                f"{args.sigma}: p50 {delays[n // 2]:.2f} s, p99 {delays[int(n * 0.99)]:.2f} s, "
                f"max {delays[-1]:.2f} s; ideal at {c} in flight: {sum(delays) / c:.1f} s"
            )
            plain, stream = [], []
            for rep in range(args.reps):  # alternating, so a load change hits both
                plain.append(asyncio.run(_plain(base_url, n, c)))
                db = tmp / f"stream-{n}-{rep}.duckdb"
                stream.append(_flow(base_url, problems, n, c, {}, db, k))
                print(
                    f"  rep {rep + 1}: asyncio {plain[-1]:.1f} s, streaming {stream[-1]:.1f} s, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            p, s_ = _median(plain), _median(stream)
            a = p / s_
            print(
                f"  medians: asyncio {p:.1f} s ({n / p:.0f}/s), streaming {s_:.1f} s "
                f"({n / s_:.0f}/s): streaming / asyncio = {a:.2f}x (target >= 0.95x): "
                f"{'PASS' if a >= 0.95 else 'FAIL'}"
            )
            if n == min(args.requests):
                old = {"lookahead": 0, "commit_seconds": 0}
                by_shard = _flow(base_url, problems, n, c, old, tmp / f"shard-{n}.duckdb", k)
                b = by_shard / s_
                print(
                    f"  by-shard flow {by_shard:.1f} s (once): by-shard / streaming = {b:.2f}x "
                    f"(target >= 2x): {'PASS' if b >= 2 else 'FAIL'}"
                )
                # One CLI run first: it starts the local Prefect server the others reuse.
                _process_walls(base_url, problems, 8, c, k, tmp)
                walls = [_process_walls(base_url, problems, n, c, k, tmp) for _ in range(args.reps)]
                cli, bare = _median([w[0] for w in walls]), _median([w[1] for w in walls])
                r = cli / bare
                print(
                    f"  process wall, medians of {args.reps}: `reasonfactory run` {cli:.1f} s, "
                    f"bare client script {bare:.1f} s: {r:.2f}x (target <= 1.5x): "
                    f"{'PASS' if r <= 1.5 else 'FAIL'}"
                )
    subprocess.run([*_CLI, "server", "stop"], check=False, capture_output=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
