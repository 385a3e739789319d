"""Benchmark the `tree` method: batching, throughput, and yield at an equal token budget.

    python bench/bench_tree.py [--problems 64] [--ops 5] [--rollouts 16] [--width 4]

One run over `--problems` built-in arithmetic problems with `--ops` operations, on the sim
engine (error_rate 0.3, typo_rate 0.1; correct steps worded 3 ways, as a sampled model's
would be). It prints:
1. batching: engine calls made vs nodes expanded (= the calls a one-request-per-node loop
   would make), mean requests per call, traces/s. Target: >= 20x fewer calls.
2. yield at the same engine token budget: `self_output` gets as many samples per problem as
   buys the tokens the tree used; per problem, traces kept by the answer check, distinct by
   text, distinct by content (the math of each step only: the sim's `wordings` vary lead-in
   words such as "Next," so the same equations count once), and distinct content with every
   intermediate equation true (process-valid). The tree column is the README recipe's
   `traces_per_problem: 2` (the two best paths); every verified path (up to 64) is shown
   beside it but is not the headline. Target: the tree's top paths give at least as much
   distinct process-valid content per problem as self_output's kept traces do.
Both methods go through the same filters (format, answer). Tokens are the engine's own
completion token counts (the sim counts words and punctuation).
"""

from __future__ import annotations

import argparse
import re
import time

import polars as pl
from reasonfactory.filters.pipeline import FilterSpec, apply_filters  # noqa: E402
from reasonfactory.generators.base import RunContext  # noqa: E402
from reasonfactory.generators.engines.base import Completion, GenRequest  # noqa: E402
from reasonfactory.generators.engines.metered import MeteredEngine  # noqa: E402
from reasonfactory.generators.engines.sim import SimEngine  # noqa: E402
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output  # noqa: E402
from reasonfactory.generators.methods.tree import TreeConfig, tree  # noqa: E402
from reasonfactory.generators.problems.sources import load_problems  # noqa: E402
from reasonfactory.generators.verify.steps import check_equations  # noqa: E402

FILTERS = [FilterSpec("format"), FilterSpec("answer")]


class TokenCounter:
    """Counts completion tokens on top of the metered engine."""

    def __init__(self, engine):
        self.engine, self.model, self.tokens = engine, engine.model, 0

    def generate(self, requests: list[GenRequest], on_sample=None) -> list[list[Completion]]:
        out = self.engine.generate(requests, on_sample=on_sample)
        self.tokens += sum(c.n_tokens for comps in out for c in comps)
        return out


def process_valid(thought: str) -> bool:
    steps = thought.split("\n\n")
    return all(check_equations(step).ok for step in steps)


_NOT_MATH = re.compile(r"[^0-9+\-*/=().]")


def content(thought: str) -> str:
    """The math of a thought, step by step: words, spaces and commas dropped.

    >>> content("Step 1: Next, 13 - 19 = -6.") == content("Step 1: 13 - 19 = -6.")
    True
    """
    return "\n".join(_NOT_MATH.sub("", step) for step in thought.split("\n\n"))


def yield_of(traces) -> dict:
    kept = traces.filter(pl.col("status") == "kept")
    distinct = kept.unique(subset=["problem_id", "thought", "response"])
    by_content = kept.with_columns(
        content=pl.col("thought").map_elements(content, return_dtype=pl.String)
    ).unique(subset=["problem_id", "content", "predicted"])
    valid = by_content.filter(pl.col("thought").map_elements(process_valid, return_dtype=bool))
    return {
        "kept": kept.height,
        "distinct": distinct.height,
        "content": by_content.height,
        "valid": valid.height,
    }


def top_paths(traces, k: int):
    """The traces a `traces_per_problem: k` run keeps (the tree ranks paths, best first)."""
    rank = pl.col("meta").str.json_path_match("$.rank").cast(pl.Int64)
    return traces.filter(rank < k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--ops", type=int, default=5)
    ap.add_argument("--rollouts", type=int, default=16)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--wordings", type=int, default=3)
    args = ap.parse_args()

    problems = load_problems(
        "builtin:arithmetic", limit=args.problems, difficulty=(args.ops, args.ops), seed=1
    )
    n = problems.height
    ctx = RunContext("bench", "bench", "sim")

    def engine():
        sim = SimEngine(error_rate=0.3, typo_rate=0.1, wordings=args.wordings)
        metered = MeteredEngine(sim)
        return metered, TokenCounter(metered)

    # -- tree ------------------------------------------------------------------------------
    metered, counted = engine()
    config = TreeConfig(rollouts=args.rollouts, width=args.width, traces_per_problem=64)
    start = time.perf_counter()
    out = tree(problems, counted, config, ctx)
    traces = apply_filters(out.traces, FILTERS)
    tree_seconds = time.perf_counter() - start
    m = metered.meter
    tree_all = yield_of(traces)
    tree_yield = yield_of(top_paths(traces, 2))
    tree_tokens = counted.tokens

    print(
        f"tree on {n} problems x {args.ops} operations (sim error_rate 0.3, typo_rate 0.1, "
        f"wordings {args.wordings}; rollouts {args.rollouts}, width {args.width}, "
        "verify equations; every verified path made a trace (up to 64) so both the top 2 "
        "and all can be counted)"
    )
    print(f"  nodes in the trees:        {out.nodes.height}")
    print(f"  nodes expanded (requests): {m.requests}  = engine calls a per-node loop makes")
    print(f"  engine calls made:         {m.calls}")
    print(f"  fewer calls:               {m.requests / m.calls:.1f}x   (target >= 20x)")
    print(f"  mean requests per call:    {m.requests / m.calls:.1f}")
    print(f"  completions sampled:       {m.completions}")
    print(f"  completion tokens:         {tree_tokens}")
    print(
        f"  wall time:                 {tree_seconds:.2f} s ({m.seconds:.2f} s in the engine), "
        f"{traces.height / tree_seconds:.1f} traces/s, {out.nodes.height / tree_seconds:.0f} "
        "nodes/s"
    )

    # -- self_output at the same token budget ---------------------------------------------
    pilot_engine = SimEngine(error_rate=0.3, typo_rate=0.1, wordings=args.wordings)
    pilot = self_output(problems, pilot_engine, SelfOutputConfig(samples=4, seed=99), ctx)
    per_sample = pilot.traces["n_tokens"].mean()
    samples = max(1, round(tree_tokens / (n * per_sample)))
    metered, counted = engine()
    start = time.perf_counter()
    so = self_output(problems, counted, SelfOutputConfig(samples=samples), ctx)
    so_traces = apply_filters(so.traces, FILTERS)
    so_seconds = time.perf_counter() - start
    so_yield = yield_of(so_traces)

    print(
        f"\nsame token budget: self_output with {samples} samples/problem "
        f"({counted.tokens} tokens vs the tree's {tree_tokens}; "
        f"{so_traces.height / so_seconds:.0f} traces/s)"
    )
    print(f"  {'per problem':<40}{'tree top 2':>11}{'self_output':>13}{'tree, all paths':>17}")
    rows = [
        ("kept (answer check)", "kept"),
        ("distinct text", "distinct"),
        ("distinct content (wording ignored)", "content"),
        ("distinct content, every equation true", "valid"),
    ]
    for label, key in rows:
        print(
            f"  {label:<40}{tree_yield[key] / n:>11.2f}{so_yield[key] / n:>13.2f}"
            f"{tree_all[key] / n:>17.2f}"
        )
    lucky = so_yield["content"] - so_yield["valid"]
    print(
        f"  self_output distinct kept content with a false equation (lucky answers): {lucky}; "
        f"tree top 2: {tree_yield['content'] - tree_yield['valid']}"
    )
    t, so = tree_yield["valid"] / n, so_yield["valid"] / n
    print(
        f"  headline, distinct content with every equation true, per problem: tree top 2 "
        f"{t:.2f} vs self_output {so:.2f} ({t / max(so, 1e-9):.2f}x, target >= 1); "
        f"self_output keeps {so_yield['content'] / n:.2f} distinct contents per problem, "
        f"{lucky / n:.2f} of them through a false equation"
    )


if __name__ == "__main__":
    main()
