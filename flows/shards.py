"""What one shard goes through before it is stored: generate, attach checkers, filter, judge.

The same plain functions run in the flow's task threads (a local run, flows/runners.py) and
inside a Ray actor (flows/ray_runner.py), so a shard comes out the same wherever it ran; the
result is a `ShardResult`, whatever ran it. `judge` is also what `refilter` applies to stored
traces: an eval run's traces get status 'eval' there and here, in one place.
Nothing here touches the warehouse: stored samples are looked up only through `lookup`, and
new completions leave only through `sink`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from reasonfactory.filters.judge import judge_store
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from reasonfactory.filters.working import with_questions
from reasonfactory.generators.engines.cached import CachedEngine, Lookup, Sink
from reasonfactory.generators.registry import get_generator
from reasonfactory.generators.verify.checkers import attach_checkers
from reasonfactory.generators.verify.gym_checker import with_tagged_answers
from reasonfactory.warehouse.evals import EVAL_STATUS


@dataclass
class ShardResult:
    """One shard generated and filtered, not stored yet: what a runner hands the committer."""

    problems: pl.DataFrame  # the shard's problems
    traces: pl.DataFrame  # with their verdicts (status 'eval' for an eval run)
    nodes: pl.DataFrame | None  # search-tree nodes, for tree methods
    # Fresh completions not yet handed to a sink (a Ray replica has none: they travel here).
    completions: pl.DataFrame
    tokens: pl.DataFrame  # per problem: tokens_generated, tokens_reused
    reused: int  # samples served from the completions table

    @property
    def kept(self) -> int:
        return int((self.traces["status"] == "kept").sum()) if self.traces.height else 0


def judge(traces: pl.DataFrame, filters: list[FilterSpec], kind: str) -> pl.DataFrame:
    """Traces (with the working columns) -> the same with verdicts; an eval run's traces are
    benchmark answers, stored with status 'eval' whatever the filters said (`correct` keeps
    the answer check), so no export ever trains on them."""
    judged = apply_filters(traces, filters)
    if kind == "eval":
        judged = judged.with_columns(
            status=pl.lit(EVAL_STATUS), reject_reason=pl.lit(None, pl.String)
        )
    return judged


def process_shard(
    shard: pl.DataFrame,
    engine,
    recipe,
    ctx,
    lookup: Lookup | None = None,
    sink: Sink | None = None,
    generated_hook=None,
) -> ShardResult:
    """Generate one shard (stored samples reused through `lookup`, new completions handed to
    `sink` as they arrive), attach answer checkers, filter and judge it. `generated_hook` is
    called once generation is over (before filtering): a runner counts shards generating."""
    cached = CachedEngine(engine, recipe.engine_id, lookup, sink)
    try:
        out = get_generator(recipe.generate.method).fn(shard, cached, recipe.generate, ctx)
    finally:
        if generated_hook is not None:
            generated_hook()
    # Problems whose answers are not checked by equality (Countdown) get their checker.
    traces = attach_checkers(out.traces, shard)
    traces = with_tagged_answers(traces)  # gym problems: `<answer>` read where no \boxed{}
    # An answer filter's LLM judge looks up and stores its judgements as completions too.
    with judge_store(lookup, sink) as store:
        judged = judge(with_questions(traces, shard), list(recipe.filters), recipe.kind)
    completions, judgements = cached.take_fresh(), store.fresh()
    if judgements is not None:  # no sink (a Ray replica): they travel with the shard
        completions = pl.concat([completions, judgements])
    return ShardResult(
        problems=shard,
        traces=judged,
        nodes=out.nodes,
        completions=completions,
        tokens=cached.tokens_by_problem(),
        reused=cached.reused,
    )
