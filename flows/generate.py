"""The `generate` flow: load problems -> shard -> generate -> filter -> ingest.

Thin wiring over library code. Each shard is one batched engine call and one ingest
transaction (its traces, its progress rows and the engine's completions together), so a run
killed half-way keeps every finished shard and, run again, does only the problems not yet
done. Resume is keyed by content (generators/resume.py): a problem whose samples failed, or
were cut off below a `max_tokens` since raised, is done again, its stored samples reused.

Runs on Prefect's ephemeral API by default (no server to start); `schedule` serves the same
flow as a deployment.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed
from reasonfactory.filters.pipeline import apply_filters
from reasonfactory.filters.working import with_questions
from reasonfactory.flows.progress import reporter
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.generators.base import Generated, RunContext
from reasonfactory.generators.engines import make_engine
from reasonfactory.generators.engines.cached import CachedEngine, needs_rerun
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.sim_plans import plan_problem
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.registry import get_generator
from reasonfactory.generators.verify.checkers import attach_checkers
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse

_USER_ERROR = "user error: "


@task(cache_policy=NONE)
def load_problems_task(recipe: Recipe, limit: int | None) -> pl.DataFrame:
    p = recipe.problems
    return load_problems(
        p.source,
        fields=p.fields,
        answer_format=p.answer_format,
        limit=limit or p.limit,
        seed=p.seed,
        difficulty=p.difficulty,
        split=p.split,
        name=p.name,
    )


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def store_problems(warehouse: str, problems: pl.DataFrame) -> int:
    with Warehouse(warehouse) as wh:
        return wh.ingest("problems", problems)


@task(cache_policy=NONE)
def pending_problems(
    warehouse: str, problems: pl.DataFrame, recipe: Recipe
) -> tuple[pl.DataFrame, set[str], bool]:
    """Problems this recipe's fingerprint has not finished yet (the resume rule): never
    stored, or stored with failed samples or samples truncated below today's max_tokens.
    Also: which of them are redone, and whether stored samples of this engine may be reused."""
    keys = problems.select(
        fingerprint=pl.lit(recipe.fingerprint),
        method=pl.lit(recipe.generate.method),
        problem_id=pl.col("problem_id"),
    )
    with Warehouse(warehouse) as wh:
        done = wh.fetch("progress", keys)
        reusable = wh.con.execute(
            "SELECT 1 FROM completions WHERE engine = ? LIMIT 1", [recipe.engine_id]
        ).fetchone()
    redo = done.filter(needs_rerun(getattr(recipe.generate, "max_tokens", None)))["problem_id"]
    finished = done.filter(~pl.col("problem_id").is_in(redo.implode()))
    todo = problems.join(finished.select("problem_id"), on="problem_id", how="anti")
    return todo, set(redo.to_list()), reusable is not None


@task(cache_policy=NONE)
def generate_shard(shard: pl.DataFrame, engine, recipe: Recipe, ctx: RunContext, warehouse=None):
    """Generate one shard; with `warehouse`, stored samples with the same content are reused.
    Returns the generator's output, the completions the engine made, and how many stored
    samples were reused."""
    spec = get_generator(recipe.generate.method)
    if warehouse is None:
        cached = CachedEngine(engine, recipe.engine_id)
        out, reused = spec.fn(shard, cached, recipe.generate, ctx), 0
    else:
        with Warehouse(warehouse) as wh:
            cached = CachedEngine(
                engine,
                recipe.engine_id,
                lambda keys: wh.fetch("completions", pl.DataFrame({"request_key": keys})),
            )
            out, reused = spec.fn(shard, cached, recipe.generate, ctx), cached.reused
    # Problems whose answers are not checked by equality (Countdown) get their checker.
    return Generated(attach_checkers(out.traces, shard), out.nodes), cached.take_fresh(), reused


@task(cache_policy=NONE)
def filter_shard(traces: pl.DataFrame, recipe: Recipe) -> pl.DataFrame:
    return apply_filters(traces, recipe.filters)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def ingest_shard(
    warehouse: str,
    shard: pl.DataFrame,
    traces: pl.DataFrame,
    nodes,
    recipe: Recipe,
    run_id: str,
    completions: pl.DataFrame | None = None,
    redo: bool = False,
) -> int:
    finish = pl.col("finish_reason") if "finish_reason" in traces.columns else pl.lit(None)
    counts = traces.group_by("problem_id").agg(
        n=pl.len(),
        n_truncated=(finish == "length").sum(),
        n_failed=(finish == "error").sum(),
    )
    progress = (
        shard.select("problem_id")
        .join(counts, on="problem_id", how="left")
        .select(
            fingerprint=pl.lit(recipe.fingerprint),
            method=pl.lit(recipe.generate.method),
            problem_id=pl.col("problem_id"),
            run_id=pl.lit(run_id),
            n_traces=pl.col("n").fill_null(0),
            finished_at=pl.lit(datetime.now(UTC)),
            max_tokens=pl.lit(getattr(recipe.generate, "max_tokens", None), pl.Int64),
            n_truncated=pl.col("n_truncated").fill_null(0),
            n_failed=pl.col("n_failed").fill_null(0),
        )
    )
    tables = {"traces": traces}
    if nodes is not None:
        tables["nodes"] = nodes
    tables["progress"] = progress
    # A stored completion with a new one's key was not reusable (cut off at a smaller budget).
    replace = {"completions": ("request_key",)}
    if completions is not None:
        tables["completions"] = completions
    if redo:  # a redone problem's rows are replaced by its new ones, never duplicated
        replace.update(
            traces=("trace_id",),
            nodes=("tree_id",),
            progress=("fingerprint", "method", "problem_id"),
        )
    with Warehouse(warehouse) as wh:
        return wh.ingest_all(tables, replace=replace)["traces"]


@flow(name="generate", log_prints=False)
def generate(recipe: dict, warehouse: str, limit: int | None = None) -> dict:
    """Run a recipe end to end; returns a summary (counts, timings, where it is stored)."""
    log = get_run_logger()
    started = time.perf_counter()
    rec = parse_recipe(recipe)
    run_id = rec.run_id
    with Warehouse(warehouse) as wh:
        wh.start_run(
            {
                "run_id": run_id,
                "recipe_name": rec.name,
                "recipe": rec.to_yaml(),
                "fingerprint": rec.fingerprint,
            }
        )
    engine = None
    try:
        problems = load_problems_task(rec, limit)
        stored = store_problems(warehouse, problems)
        todo, redo, reuse = pending_problems(warehouse, problems, rec)
        log.info(
            "run %s: %d problems (%d new in the warehouse), %d still to generate (%d redone: "
            "failed or truncated samples)",
            run_id,
            problems.height,
            stored,
            todo.height,
            len(redo),
        )
        engine = MeteredEngine(_engine_for(rec, todo))
        ctx = RunContext(run_id=run_id, fingerprint=rec.fingerprint, model=engine.model)
        size = rec.generate.shard_size
        n_shards = -(-todo.height // size)
        reasons: Counter = Counter()
        generated = kept = reused = 0
        progress = reporter()
        progress.start(todo.height, f"generate {rec.name}")
        for i in range(n_shards):
            t0 = time.perf_counter()
            shard = todo.slice(i * size, size)
            shard_redo = bool(redo) and shard["problem_id"].is_in(list(redo)).any()
            out, completions, shard_reused = generate_shard(
                shard, engine, rec, ctx, warehouse if (reuse or shard_redo) else None
            )
            reused += shard_reused
            traces = filter_shard(with_questions(out.traces, shard), rec)
            ingest_shard(warehouse, shard, traces, out.nodes, rec, run_id, completions, shard_redo)
            generated += traces.height
            shard_kept = int((traces["status"] == "kept").sum()) if traces.height else 0
            kept += shard_kept
            reasons.update(r for r in traces["reject_reason"].to_list() if r)
            tokens = traces["n_tokens"].sum() if "n_tokens" in traces.columns else 0
            progress.advance(shard.height, traces.height, shard_kept, tokens)
            log.info(
                "shard %d/%d: %d problems -> %d traces, %d kept (%.1f s)",
                i + 1,
                n_shards,
                shard.height,
                traces.height,
                shard_kept,
                time.perf_counter() - t0,
            )
        wall = time.perf_counter() - started
        summary = {
            "run_id": run_id,
            "warehouse": str(warehouse),
            "problems": problems.height,
            "problems_generated": todo.height,
            "generated": generated,
            "kept": kept,
            "rejected": dict(reasons.most_common()),
            "seconds": round(wall, 3),
            "engine_seconds": round(engine.meter.seconds, 3),
            "engine_calls": engine.meter.calls,
            "engine_requests": engine.meter.requests,
            "engine_completions": engine.meter.completions,
            "samples_reused": reused,
        }
        with Warehouse(warehouse) as wh:
            wh.finish_run(run_id, "completed", json.dumps(summary))
        return summary
    except UserError as exc:
        with Warehouse(warehouse) as wh:
            wh.finish_run(run_id, "failed", json.dumps({"error": str(exc)}))
        return Failed(message=_USER_ERROR + str(exc))
    except BaseException as exc:
        with Warehouse(warehouse) as wh:
            wh.finish_run(run_id, "failed", json.dumps({"error": repr(exc)}))
        raise


def _engine_for(recipe: Recipe, problems: pl.DataFrame):
    uses_engine = get_generator(recipe.generate.method).uses_engine
    if recipe.engine.kind == "sim" and problems.height and uses_engine:
        unknown = [q for q in problems["question"].head(50) if plan_problem(q) is None]
        if unknown:
            raise UserError(
                f"the sim engine only solves built-in problems (builtin:arithmetic, "
                f"builtin:linear), not {recipe.problems.source!r} (e.g. {unknown[0][:80]!r}); "
                "use engine kind vllm or openai for real problem sets"
            )
    return make_engine(recipe.engine)


def run_recipe(recipe: Recipe, warehouse: str, limit: int | None = None) -> dict:
    """Run the flow and return its summary; a user error comes back as `UserError`."""
    state = generate(recipe.to_data(), str(warehouse), limit, return_state=True)
    if state.is_failed():
        if state.message and state.message.startswith(_USER_ERROR):
            raise UserError(state.message.removeprefix(_USER_ERROR))
        state.result()  # a bug: re-raise it with its traceback
    return state.result()
