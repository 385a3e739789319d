"""Stream-of-Search on Countdown: each of the 12 strategies over the same problems.

Prints, per strategy: solve rate, median / p90 / max trace length in characters (the
thought, i.e. the search text), mean nodes explored, and traces/s of the search alone; then
the whole `sos` generator (paper mix, rows built) and the format + answer filters on its
output. For comparison, the reference generator rerun over 3,000 problems
(../shared/ALGORITHMS.md section 4): DFS 71%, beam-1 13%, beam-5 58% solved; trace length
median 3.3k, p90 20k characters over all strategies.

With the defaults it also prints the figures README quotes for its `countdown-sos` recipe
(`builtin:countdown`, limit 1000, seed 0, `samples: 1`, the paper's mix, `max_nodes: 2000`):
how many traces reach the goal (DFS and beam search apart), how many fail and whether the
budget stopped any, and that the unpruned DFS (`sos.EXHAUSTIVE`) solves every problem.

    python bench/bench_sos.py [--problems 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec  # noqa: E402
from reasonfactory.generators.base import RunContext  # noqa: E402
from reasonfactory.generators.methods.sos import (  # noqa: E402
    EXHAUSTIVE,
    STRATEGIES,
    SosConfig,
    search_countdown,
    sos,
)
from reasonfactory.generators.problems.countdown import parse_countdown  # noqa: E402
from reasonfactory.generators.problems.sources import load_problems  # noqa: E402
from reasonfactory.warehouse.ids import digest  # noqa: E402


def pct(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    problems = load_problems("builtin:countdown", limit=args.problems, seed=args.seed)
    made = time.perf_counter() - t0
    print(f"{problems.height} Countdown problems (4 numbers, solvable) made in {made:.1f} s")
    parsed = [
        (pid, *parse_countdown(q))
        for pid, q in zip(problems["problem_id"], problems["question"], strict=True)
    ]
    header = (
        f"{'strategy':<10} {'solved':>7} {'median':>7} {'p90':>7} {'max':>8} "
        f"{'explored':>9} {'traces/s':>9}"
    )
    print(header)
    print("-" * len(header))
    all_lengths: list[int] = []
    by_search: dict[str, list[bool]] = {}
    for name, strategy in STRATEGIES.items():
        lengths, solved, explored = [], [], []
        start = time.perf_counter()
        for pid, numbers, target in parsed:
            rng = random.Random(digest(args.seed, pid, name))
            result = search_countdown(numbers, target, strategy, rng=rng, max_nodes=2000)
            lengths.append(len(result.text))
            solved.append(result.solved)
            explored.append(result.explored)
        wall = time.perf_counter() - start
        all_lengths += lengths
        key = "dfs" if strategy.search == "dfs" else f"beam-{strategy.beam}"
        by_search.setdefault(key, []).extend(solved)
        print(
            f"{name:<10} {sum(solved) / len(solved):>6.1%} {statistics.median(lengths):>7.0f} "
            f"{pct(lengths, 0.9):>7} {max(lengths):>8} {statistics.mean(explored):>9.1f} "
            f"{len(parsed) / wall:>9.0f}",
            flush=True,
        )
    print("-" * len(header))
    print(
        "by search (both heuristics): "
        + ", ".join(f"{k} {sum(v) / len(v):.0%}" for k, v in by_search.items())
    )
    print(
        f"all 12 strategies: trace length median {statistics.median(all_lengths):.0f}, "
        f"p90 {pct(all_lengths, 0.9)}, max {max(all_lengths)} characters"
    )

    ctx = RunContext("bench", "bench", "sim")
    start = time.perf_counter()
    out = sos(problems, None, SosConfig(samples=1, seed=args.seed), ctx).traces
    gen_wall = time.perf_counter() - start
    start = time.perf_counter()
    filtered = apply_filters(out, [parse_filter_spec("format"), parse_filter_spec("answer")])
    filter_wall = time.perf_counter() - start
    kept = int((filtered["status"] == "kept").sum())
    print(
        f"sos generator, paper mix, {out.height} traces: {out.height / gen_wall:.0f} traces/s; "
        f"format+answer filters {out.height / filter_wall:.0f} traces/s; kept {kept} "
        f"({kept / out.height:.0%}), rejected no_solution {out.height - kept}"
    )
    metas = [json.loads(m) for m in out["meta"]]
    solved = [r is None for r in out["generator_reason"]]
    dfs = [ok for ok, m in zip(solved, metas, strict=True) if m["search"] == "dfs"]
    beam = [ok for ok, m in zip(solved, metas, strict=True) if m["search"] == "bfs"]
    budget = sum(m["budget_exhausted"] for m in metas)
    print(
        f"README (limit {out.height}, seed {args.seed}, paper mix, max_nodes 2000): "
        f"{sum(solved):,} of {out.height:,} traces reach the goal (DFS {sum(dfs)} of "
        f"{len(dfs)}, beam search {sum(beam)} of {len(beam)}) and {out.height - sum(solved):,} "
        f"are failed searches, {budget or 'none'} of them stopped by the node budget"
    )
    exhaustive = [
        search_countdown(numbers, target, EXHAUSTIVE, rng=random.Random(0), max_nodes=2000)
        for _, numbers, target in parsed
    ]
    print(
        f"unpruned DFS (sos.EXHAUSTIVE): {sum(r.solved for r in exhaustive)} of "
        f"{len(exhaustive)} problems solved within 2000 nodes, at most "
        f"{max(r.explored for r in exhaustive)} explored"
    )


if __name__ == "__main__":
    main()
