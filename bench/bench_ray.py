"""Benchmark the Ray runner: 1 against 2 engine replicas on a local Ray (`ray.init(num_cpus=2)`).

The sim engine with a fixed `delay_s` per call stands in for a model's time per batch (a GPU
busy with one shard): `--problems` arithmetic problems, `--samples` each, `--shard-size` per
call, so every shard costs `--delay` seconds of engine time plus the sim's own work and the
filters. Three runs of the same recipe on fresh warehouses, in the same process:

  local       the default runner (one engine in the flow's process)
  ray x1      `runner: {kind: ray, replicas: 1}`
  ray x2      `runner: {kind: ray, replicas: 2}`

Times are the flow's own `seconds` (load, start the replicas, generate, filter, store), after a
warm-up run that starts Prefect's ephemeral API and Ray; starting a run's actors (each builds
its engine and imports reasonfactory) costs 1-7 s on a busy 2-core machine, also shown apart;
1,600 problems make the runs long enough that it does not decide the ratio. Target: ray x2
>= 1.8x the throughput of ray x1. The runs store the same rows (checked). This prints numbers;
it is not a test.

    .venv/bin/python bench/bench_ray.py
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
from pathlib import Path

from common import isolate_prefect

isolate_prefect()

import ray  # noqa: E402
from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402


def _run(args, runner: dict, db: Path, problems: int) -> dict:
    recipe = {
        "name": "bench-ray",
        "problems": {"source": "builtin:arithmetic", "limit": problems, "difficulty": [3, 5]},
        "engine": {"kind": "sim", "error_rate": 0.2, "delay_s": args.delay},
        "generate": {"method": "self_output", "samples": args.samples, "shard_size": args.shard},
        "filters": ["format", "answer"],
        "runner": runner,
    }
    return run_recipe(parse_recipe(recipe), str(db))


def _traces(db: Path):
    with Warehouse(db, read_only=True) as wh:
        return wh.sql("SELECT trace_id, status, reject_reason, thought FROM traces ORDER BY 1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", type=int, default=1600)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--shard-size", dest="shard", type=int, default=10)
    ap.add_argument("--delay", type=float, default=0.5, help="sim seconds per engine call")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-ray-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    ray.init(num_cpus=2, include_dashboard=False)
    _run(args, {"kind": "ray", "replicas": 2}, tmp / "warmup.duckdb", 2 * args.shard)
    shards = -(-args.problems // args.shard)
    print(
        f"{args.problems} problems x {args.samples} samples, shard_size {args.shard}: {shards} "
        f"engine calls of {args.delay} s delay each (ideal: {shards * args.delay:.1f} s on one "
        f"replica, {shards * args.delay / 2:.1f} s on two)"
    )
    rows = {}
    for name, runner in (
        ("local", {}),
        ("ray x1", {"kind": "ray", "replicas": 1}),
        ("ray x2", {"kind": "ray", "replicas": 2}),
    ):
        db = tmp / f"{name.replace(' ', '')}.duckdb"
        s = _run(args, runner, db, args.problems)
        start = s.get("replicas_start_seconds", 0.0)
        rows[name] = (s["seconds"], s["seconds"] - start)
        print(
            f"{name:7s} {s['seconds']:6.1f} s  {args.problems / s['seconds']:6.1f} problems/s  "
            f"{s['generated'] / s['seconds']:7.1f} traces/s  ({s['generated']} traces, "
            f"{s['kept']} kept; {start:.1f} s of it starting the replicas)"
        )
    same = _traces(tmp / "local.duckdb").equals(_traces(tmp / "rayx2.duckdb"))
    print(f"ray x2 stored the same traces as local: {same}")
    ray.shutdown()
    ratio = rows["ray x1"][0] / rows["ray x2"][0]
    print(
        f"ray x2 / ray x1 = {ratio:.2f}x throughput, whole runs (target >= 1.8x): "
        f"{'PASS' if ratio >= 1.8 else 'FAIL'}"
    )
    warm = rows["ray x1"][1] / rows["ray x2"][1]
    print(f"ray x2 / ray x1 = {warm:.2f}x once the replicas are up")


if __name__ == "__main__":
    main()
