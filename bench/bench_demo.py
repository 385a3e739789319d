"""Benchmark the built-in demo recipe end to end: traces/s and where the flow's time goes.

Runs `run_recipe(DEMO_RECIPE)` into a fresh temporary warehouse twice: at the recipe's own
limit (200 problems x 8 samples) and at `--problems` (default 2,000). For each it prints
traces per second of flow wall time and the share of that time spent outside engine calls
(the sim engine is fast, so that share is what the rest of the pipeline costs).

`--profile` times the flow's steps as plain library calls (no Prefect, no profiler), then runs
the larger size once more under cProfile and prints a stage breakdown (engine, completion
parsing, voting, answer check, filters, ingest; the rest is Prefect) and the top functions.
This prints numbers; it is not a test and asserts nothing.

    .venv/bin/python bench/bench_demo.py --problems 2000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import isolate_prefect

# Prefect reads its settings at import: point it at a throwaway home, no telemetry.
isolate_prefect()

ROOT = Path(__file__).resolve().parents[1]

from reasonfactory.filters.pipeline import FILTERS, apply_filters  # noqa: E402
from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import DEMO_RECIPE, parse_recipe  # noqa: E402
from reasonfactory.generators.base import RunContext  # noqa: E402
from reasonfactory.generators.engines import make_engine  # noqa: E402
from reasonfactory.generators.engines.metered import MeteredEngine  # noqa: E402
from reasonfactory.generators.problems.sources import load_problems  # noqa: E402
from reasonfactory.generators.registry import get_generator  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

# Stages of the flow, by (file suffix, function name); cumulative time under cProfile.
STAGES = [
    ("flow total", "flows/generate.py", "generate"),
    ("  load problems", "generators/problems/sources.py", "load_problems"),
    ("  generate (self_output)", "generators/self_output.py", "self_output"),
    ("    engine (sim)", "generators/engines/metered.py", "generate"),
    ("    parse completions", "generators/prompts.py", "parse_completion"),
    ("    build prompts", "generators/prompts.py", "build_messages"),
    ("    answer keys (voting)", "generators/answers.py", "answer_key"),
    ("    trace ids", "warehouse/ids.py", "trace_id"),
    ("    frame from row dicts", "polars/dataframe/frame.py", "__init__"),
    ("  filters (apply_filters)", "filters/pipeline.py", "apply_filters"),
    ("    format filter", "filters/format.py", "format_filter"),
    ("    answer filter", "filters/answer.py", "answer_filter"),
    ("      math-verify parse", "math_verify/parser.py", "parse"),
    ("      math-verify verify", "math_verify/grader.py", "verify"),
    ("  ingest (ingest_all)", "warehouse/store.py", "ingest_all"),
    ("  warehouse open/close", "warehouse/store.py", "__init__"),
]


def run_once(problems: int | None, tmp: Path, label: str) -> dict:
    warehouse = tmp / f"{label}.duckdb"
    recipe = parse_recipe(DEMO_RECIPE)
    t0 = time.perf_counter()
    summary = run_recipe(recipe, str(warehouse), problems)
    outer = time.perf_counter() - t0
    flow_s, engine_s, n = summary["seconds"], summary["engine_seconds"], summary["generated"]
    outside = flow_s - engine_s
    print(
        f"  {label:<12} {summary['problems']:>6,} problems -> {n:>7,} traces "
        f"({summary['kept']:,} kept) in {flow_s:6.2f} s flow wall ({outer:6.2f} s with Prefect "
        f"start-up) = {n / flow_s:8,.0f} traces/s; engine {engine_s:5.2f} s, "
        f"outside the engine {outside:6.2f} s = {outside / flow_s:.1%}",
        flush=True,
    )
    return summary


def stage_times(n: int, tmp: Path) -> None:
    """The flow's steps as plain library calls (no Prefect, no profiler), timed one by one."""
    rec = parse_recipe(DEMO_RECIPE)
    p = rec.problems
    spent: dict[str, float] = {}

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0

        return wrapper

    originals = dict(FILTERS)
    for name, entry in originals.items():
        FILTERS[name] = replace(entry, fn=timed(f"    {name} filter", entry.fn))
    generate = timed("  generate (self_output)", get_generator(rec.generate.method).fn)
    filters = timed("  apply_filters", apply_filters)
    try:
        t0 = time.perf_counter()
        problems = timed("  load problems", load_problems)(
            p.source, limit=n, seed=p.seed, difficulty=p.difficulty
        )
        engine = MeteredEngine(make_engine(rec.engine))
        ctx = RunContext(run_id=rec.run_id, fingerprint=rec.fingerprint, model=engine.model)
        path = tmp / "stages.duckdb"
        with Warehouse(path) as wh:
            timed("  ingest", wh.ingest)("problems", problems)
        size = rec.generate.shard_size
        for offset in range(0, problems.height, size):
            out = generate(problems.slice(offset, size), engine, rec.generate, ctx)
            traces = filters(out.traces, rec.filters)
            with Warehouse(path) as wh:
                timed("  ingest", wh.ingest)("traces", traces)
        total = time.perf_counter() - t0
    finally:
        FILTERS.update(originals)
    spent["    engine (sim)"] = engine.meter.seconds
    spent["    the rest of self_output"] = spent["  generate (self_output)"] - engine.meter.seconds
    in_filters = sum(v for k, v in spent.items() if k.endswith(" filter"))
    spent["    per-row meta update etc."] = spent["  apply_filters"] - in_filters
    order = [
        "  load problems", "  generate (self_output)", "    engine (sim)",
        "    the rest of self_output", "  apply_filters",
        *(f"    {k} filter" for k in originals if f"    {k} filter" in spent),
        "    per-row meta update etc.", "  ingest",
    ]  # fmt: skip
    print(f"\n== stage wall times, {n:,} problems as plain library calls (no Prefect, no profiler)")
    print(f"  {'stage':<32}{'seconds':>9}{'share':>8}")
    print(f"  {'total':<32}{total:>9.2f}{1:>8.1%}")
    for label in order:
        print(f"  {label:<32}{spent[label]:>9.2f}{spent[label] / total:>8.1%}")


def profile(problems: int, tmp: Path, top: int) -> None:
    prof = cProfile.Profile()
    recipe = parse_recipe(DEMO_RECIPE)
    prof.enable()
    summary = run_recipe(recipe, str(tmp / "profiled.duckdb"), problems)
    prof.disable()
    stats = pstats.Stats(prof)
    by_stage: dict[str, tuple[float, int]] = {}
    for (file, _line, func), (_cc, ncalls, _tt, ct, _callers) in stats.stats.items():
        for label, suffix, name in STAGES:
            if func == name and file.endswith(suffix):
                t, c = by_stage.get(label, (0.0, 0))
                by_stage[label] = (t + ct, c + ncalls)
    flow = by_stage.get("flow total", (summary["seconds"], 1))[0]
    print(
        f"\n== cProfile of one {problems:,}-problem run ({summary['generated']:,} traces; "
        f"profiling slows Python code, so shares matter more than seconds)"
    )
    print(f"  {'stage':<30}{'cum s':>9}{'share':>8}{'calls':>10}")
    for label, _suffix, _name in STAGES:
        if label in by_stage:
            t, c = by_stage[label]
            print(f"  {label:<30}{t:>9.2f}{t / flow:>8.1%}{c:>10,}")
    print("  (the rest of 'flow total' is Prefect task orchestration and logging)")
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        body = out.getvalue()
        print(f"\n== top {top} functions by {title}")
        print(body[body.index("   ncalls") :].rstrip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--problems", type=int, default=2000, help="problems for the larger run")
    p.add_argument("--profile", action="store_true", help="profile one larger run (cProfile)")
    p.add_argument("--top", type=int, default=25, help="functions to list when profiling")
    args = p.parse_args()
    default = DEMO_RECIPE["problems"]["limit"]
    samples = DEMO_RECIPE["generate"]["samples"]
    print(
        f"demo benchmark: recipe {DEMO_RECIPE['name']!r}, {samples} samples per problem, sim "
        f"engine; {default} and {args.problems:,} problems; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="rf-bench-demo-") as d:
        tmp = Path(d)
        # The first flow run starts Prefect's ephemeral API; a tiny warm-up keeps that out.
        t0 = time.perf_counter()
        run_recipe(parse_recipe(DEMO_RECIPE), str(tmp / "warmup.duckdb"), 2)
        print(
            f"  warm-up (Prefect ephemeral API start, 2 problems): {time.perf_counter() - t0:.1f} s"
        )
        run_once(None, tmp, f"demo {default}")
        run_once(args.problems, tmp, f"demo {args.problems}")
        if args.profile:
            stage_times(args.problems, tmp)
            profile(args.problems, tmp, args.top)


if __name__ == "__main__":
    main()
