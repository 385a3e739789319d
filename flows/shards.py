"""What one shard goes through before it is stored: generate, attach checkers, filter.

The same plain functions run in the flow's task threads (a local run, flows/generate.py) and
inside a Ray actor (flows/ray_runner.py), so a shard comes out the same wherever it ran.
Nothing here touches the warehouse: stored samples are looked up only through `lookup`.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from reasonfactory.filters.pipeline import apply_filters
from reasonfactory.filters.working import with_questions
from reasonfactory.generators.base import Generated, RunContext
from reasonfactory.generators.engines.cached import CachedEngine
from reasonfactory.generators.registry import get_generator
from reasonfactory.generators.verify.checkers import attach_checkers


def generate_one(
    shard: pl.DataFrame,
    engine,
    recipe,
    ctx: RunContext,
    lookup: Callable[[list[str]], pl.DataFrame] | None = None,
) -> tuple[Generated, pl.DataFrame, int]:
    """Generate one shard: the generator's output, the completions the engine made, and how
    many stored samples `lookup` gave back instead (0 without one)."""
    spec = get_generator(recipe.generate.method)
    cached = CachedEngine(engine, recipe.engine_id, lookup)
    out = spec.fn(shard, cached, recipe.generate, ctx)
    # Problems whose answers are not checked by equality (Countdown) get their checker.
    return (
        Generated(attach_checkers(out.traces, shard), out.nodes),
        cached.take_fresh(),
        cached.reused,
    )


def filter_one(shard: pl.DataFrame, generated: Generated, recipe) -> pl.DataFrame:
    """The shard's traces with a verdict and a reason each (the recipe's filters)."""
    return apply_filters(with_questions(generated.traces, shard), recipe.filters)
