"""The `generate` flow: load problems -> shard -> generate -> filter -> ingest, streaming.

Thin wiring over library code. Shards are generated and filtered in Prefect's task threads
while the flow's own thread stores the ones before them (`_streamed`): generation, filtering
and ingest overlap, and the `openai` engine keeps `concurrency` requests in flight across
shard boundaries (`runner.lookahead`, 0 for shard by shard). Finished shards are stored in
shard order, one transaction each `runner.commit_seconds` or 122,880 traces (one DuckDB row
group), whichever comes first, and at the end or on a failure; a transaction holds their
traces, progress rows and the engine's completions together. So a run killed half-way keeps
every committed shard (kill -9 loses at most the last `commit_seconds` of work) and, run
again, does only the problems not yet done. Resume is keyed by content
(generators/engines/cached.py): a problem whose samples failed, or were cut off below a
`max_tokens` since raised, is done again, its stored samples reused.

One warehouse connection per run: the schema is checked once, rows of problems the progress
ledger says are new are appended without key lookups, and between two shards the file is
handed to processes waiting for it (other runs, `query`, `export`; warehouse/locking.py).

Runs on Prefect's ephemeral API by default (no server to start); `schedule` serves the same
flow as a deployment.

Long on purpose: the streaming scheduler, the batched commit and the flow share the run's one
connection and its bookkeeping (redo set, reuse, re-filter on changed filters or golds);
apart, each would need the others' state passed around.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import yaml
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.states import Failed
from reasonfactory.filters.pipeline import parse_filter_spec
from reasonfactory.flows.interrupts import SafePoints
from reasonfactory.flows.progress import reporter
from reasonfactory.flows.ray_runner import RayRunner, done
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.flows.refilter import refilter_stored
from reasonfactory.flows.shards import filter_one, generate_one
from reasonfactory.generators.base import Generated, RunContext
from reasonfactory.generators.engines import make_engine
from reasonfactory.generators.engines.cached import needs_rerun
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.sim_plans import plan_problem
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.registry import get_generator
from reasonfactory.generators.verify.sandbox import describe_isolation
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import EVAL_STATUS
from reasonfactory.warehouse.store import BATCH_ROWS, Warehouse

_USER_ERROR = "user error: "
# Finished shards that may wait, in memory, for a slow shard before them to be stored.
MAX_WAITING = 32
# How long the flow's thread waits on its shards before it looks for a Ctrl-C.
WAIT_S = 0.25


@task(cache_policy=NONE)
def load_problems_task(recipe: Recipe, limit: int | None) -> pl.DataFrame:
    p = recipe.problems
    return load_problems(
        p.source,
        fields=p.fields,
        answer_format=p.answer_format,
        limit=p.limit if limit is None else limit,
        seed=p.seed,
        difficulty=p.difficulty,
        split=p.split,
        name=p.name,
    )


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def store_problems(wh: Warehouse, problems: pl.DataFrame) -> tuple[int, set[str]]:
    """Store new problems and corrected golds; returns how many are new and whose gold changed."""
    changed, _ = wh.update_golds(problems)
    return wh.ingest("problems", problems), set(changed["problem_id"].to_list())


def stale_traces(previous: str | None, recipe: Recipe, regilded: set[str]) -> set[str] | None:
    """Which stored traces of a re-run no longer carry today's verdicts: all (the filters
    changed since the run's last recipe), those of the problems whose gold changed, or none
    (an empty set). `None` means every problem of the run."""
    if previous is None:
        return set()
    try:
        before = [
            parse_filter_spec(f) for f in (yaml.safe_load(previous) or {}).get("filters") or []
        ]
    except (ValueError, yaml.YAMLError):  # a recipe stored by an older version: judge again
        return None
    return None if before != list(recipe.filters) else regilded


@task(cache_policy=NONE)
def pending_problems(
    wh: Warehouse, problems: pl.DataFrame, recipe: Recipe
) -> tuple[pl.DataFrame, set[str], bool]:
    """Problems this recipe's fingerprint has not finished yet (the resume rule): never
    stored, or stored with failed samples or samples truncated below today's max_tokens.
    Also: which of them are redone, and whether stored samples of this engine may be reused."""
    keys = problems.select(
        fingerprint=pl.lit(recipe.fingerprint),
        method=pl.lit(recipe.generate.method),
        problem_id=pl.col("problem_id"),
    )
    done = wh.fetch("progress", keys)
    reusable = wh.sql(
        "SELECT 1 FROM completions WHERE engine = ? LIMIT 1", [recipe.engine_id]
    ).height
    redo = done.filter(needs_rerun(getattr(recipe.generate, "max_tokens", None)))["problem_id"]
    finished = done.filter(~pl.col("problem_id").is_in(redo.implode()))
    todo = problems.join(finished.select("problem_id"), on="problem_id", how="anti")
    return todo, set(redo.to_list()), reusable > 0


@task(cache_policy=NONE)
def generate_shard(
    shard: pl.DataFrame, engine, recipe: Recipe, ctx: RunContext, wh: Warehouse | None = None
):
    """Generate one shard; with `wh`, stored samples with the same content are reused.
    Returns the generator's output, the completions the engine made, and how many stored
    samples were reused."""
    lookup = None
    if wh is not None:
        lookup = lambda keys: wh.fetch("completions", pl.DataFrame({"request_key": keys}))  # noqa: E731
    return generate_one(shard, engine, recipe, ctx, lookup)


@task(cache_policy=NONE)
def filter_shard(shard: pl.DataFrame, generated: Generated, recipe: Recipe) -> pl.DataFrame:
    return filter_one(shard, generated, recipe)


@dataclass
class Filtered:
    """One shard generated and filtered, not stored yet."""

    shard: pl.DataFrame
    traces: pl.DataFrame
    nodes: pl.DataFrame | None
    completions: pl.DataFrame
    redo: bool  # some of its problems were done before: their rows are replaced
    reused: bool  # stored samples were looked up: a new completion may replace a stored one


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def ingest_shards(wh: Warehouse, batch: list[Filtered], recipe: Recipe, run_id: str) -> int:
    """Store finished shards in one transaction (their traces, progress rows and completions
    together). Rows of problems the ledger said were new are appended without key lookups
    while this run has had the file to itself since it read the ledger; once it handed the
    file over (another run may have stored the same problems), every insert skips stored keys."""
    tables: dict[str, list[pl.DataFrame]] = {"traces": [], "nodes": [], "progress": []}
    tables["completions"] = []
    for f in batch:
        tables["traces"].append(f.traces)
        if f.nodes is not None:
            tables["nodes"].append(f.nodes)
        tables["progress"].append(_progress(f.shard, f.traces, recipe, run_id))
        tables["completions"].append(f.completions)
    replace: dict[str, tuple[str, ...]] = {}
    if any(f.reused for f in batch):  # a stored completion with a new one's key was cut off
        replace["completions"] = ("request_key",)
    if any(f.redo for f in batch):  # a redone problem's rows are replaced, never duplicated
        replace.update(
            traces=("trace_id",),
            nodes=("tree_id",),
            progress=("fingerprint", "method", "problem_id"),
        )
    append = set(tables) - set(replace) if wh.exclusive else set()
    return wh.ingest_all(tables, replace=replace, append=append)["traces"]


def _progress(shard: pl.DataFrame, traces: pl.DataFrame, recipe: Recipe, run_id: str):
    """The shard's `progress` rows: its problems are done, with how many traces, cut off or
    failed."""
    finish = pl.col("finish_reason") if "finish_reason" in traces.columns else pl.lit(None)
    counts = traces.group_by("problem_id").agg(
        n=pl.len(),
        n_truncated=(finish == "length").sum(),
        n_failed=(finish == "error").sum(),
    )
    return (
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


def _streamed(
    shards: list[pl.DataFrame],
    generate: Callable[[pl.DataFrame], PrefectFuture],
    filter_: Callable[[pl.DataFrame, object], PrefectFuture],
    lookahead: int,
    max_waiting: int = MAX_WAITING,
    check: Callable[[], None] = lambda: None,
    hungry: Callable[[], bool] | None = None,
) -> Iterator[tuple[pl.DataFrame, object, object]]:
    """(shard, its generation, its filtered traces) in shard order, as a small scheduler over
    Prefect futures. Up to `lookahead` shards generate at once (0: one at a time, the next
    started once the caller is done with the last), and one more whenever `hungry()` says
    the engine is about to run out of queued work (a shard stuck on one slow reply does not
    count against it); each is filtered as soon as it is generated, in any order, while the
    caller stores earlier ones. A slow shard holds no other back: shards after it keep
    finishing and new ones start (at most `max_waiting` finished shards wait in memory for
    it), so an engine's slots stay busy. `check` runs at least every `WAIT_S` while it
    waits: where a Ctrl-C is raised (flows/interrupts.py)."""
    n = len(shards)
    gens: dict[int, PrefectFuture] = {}
    filts: dict[int, PrefectFuture] = {}
    failed: set[int] = set()
    started = given = 0
    while given < n:
        busy = sum(not f.wrapped_future.done() for f in gens.values())
        asked = False  # at most one shard per pass for `hungry`: its requests count from then
        while (
            started < n
            and (lookahead > 0 or started == given)
            and started - given <= max_waiting
            and (busy < max(lookahead, 1) or (hungry is not None and not asked and hungry()))
        ):
            asked = busy >= max(lookahead, 1)
            gens[started] = generate(shards[started])
            started, busy = started + 1, busy + 1
        for i, f in gens.items():
            if i not in filts and i not in failed and f.wrapped_future.done():
                try:
                    filts[i] = filter_(shards[i], f.result())
                except BaseException:
                    failed.add(i)  # raised in shard order, once the shards before it are given
        if given in failed:
            gens[given].result()
        head = filts.get(given)
        if head is not None and head.wrapped_future.done():
            yield shards[given], gens.pop(given).result(), head.result()
            del filts[given]
            given += 1
            continue
        pending = [f.wrapped_future for f in (*gens.values(), *filts.values())]
        wait([f for f in pending if not f.done()], timeout=WAIT_S, return_when=FIRST_COMPLETED)
        check()


def _lookahead(recipe: Recipe) -> int:
    """Shards to generate ahead: the recipe's, else 1 (the engine works while the last
    shard is filtered and stored; the openai engine asks for more, `_hungry`)."""
    if recipe.runner.lookahead is not None:
        return recipe.runner.lookahead
    if recipe.runner.kind == "ray":  # each replica generates one, filters one, has one queued
        return 3 * recipe.runner.replicas
    return 1


def _hungry(recipe: Recipe, engine) -> Callable[[], bool] | None:
    """For an engine that counts the requests waiting for its slots (openai) and a recipe
    that does not fix `runner.lookahead`: the next shard starts whenever fewer than
    `concurrency` wait. A fixed count of shards ahead cannot do that with heavy-tailed
    replies: each shard ends with its slowest reply, and while a few shards sit on their
    stragglers the ones behind them drain, leaving slots idle (measured: 0.77-0.89x of a
    plain asyncio client with 3 shards ahead, bench/bench_streaming.py)."""
    backlog = getattr(getattr(engine, "engine", None), "backlog", None)
    concurrency = getattr(recipe.engine, "concurrency", None)
    if recipe.runner.lookahead is not None or backlog is None or not concurrency:
        return None
    return lambda: backlog() < concurrency


@flow(name="generate", log_prints=False)
def generate(recipe: dict, warehouse: str, limit: int | None = None) -> dict:
    """Run a recipe end to end; returns a summary (counts, timings, where it is stored)."""
    log = get_run_logger()
    started = time.perf_counter()
    rec = parse_recipe(recipe)
    run_id = rec.run_id
    with Warehouse(warehouse) as wh:
        previous = wh.con.execute("SELECT recipe FROM runs WHERE run_id = ?", [run_id]).fetchall()
        wh.start_run(
            {
                "run_id": run_id,
                "recipe_name": rec.name,
                "recipe": rec.to_yaml(),
                "fingerprint": rec.fingerprint,
            }
        )
        try:
            summary = _run(
                wh, rec, run_id, limit, log, started, previous[0][0] if previous else None
            )
        except UserError as exc:
            wh.finish_run(run_id, "failed", json.dumps({"error": str(exc)}))
            return Failed(message=_USER_ERROR + str(exc))
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            wh.finish_run(run_id, status, json.dumps({"error": repr(exc)}))
            raise
        wh.finish_run(run_id, "completed", json.dumps(summary))
        return summary


def _run(
    wh: Warehouse,
    rec: Recipe,
    run_id: str,
    limit: int | None,
    log,
    started: float,
    previous: str | None,
) -> dict:
    problems = load_problems_task(rec, limit)
    stored, regilded = store_problems(wh, problems)
    todo, redo, reuse = pending_problems(wh, problems, rec)
    log.info(
        "run %s: %d problems (%d new in the warehouse), %d still to generate (%d redone: "
        "failed or truncated samples)",
        run_id,
        problems.height,
        stored,
        todo.height,
        len(redo),
    )
    size = rec.generate.shard_size
    shards = [todo.slice(start, size) for start in range(0, todo.height, size)]
    redo_ids = pl.Series(list(redo), dtype=pl.String)
    replicas = ExitStack()  # the Ray runner's actors, ended however the run ends
    hungry = None
    if rec.runner.kind == "ray" and shards:
        _check_engine(rec, todo)
        engine = replicas.enter_context(RayRunner(rec, run_id))
        submit = engine.submit
    else:
        engine = MeteredEngine(_engine_for(rec, todo))
        ctx = RunContext(run_id=run_id, fingerprint=rec.fingerprint, model=engine.model)
        hungry = _hungry(rec, engine)

        def submit(shard: pl.DataFrame):
            # Stored samples are looked up only when some may exist (a resumed or redone run).
            shard_redo = bool(redo) and bool(shard["problem_id"].is_in(redo_ids).any())
            return generate_shard.submit(
                shard, engine, rec, ctx, wh if reuse or shard_redo else None
            )

    reasons: Counter = Counter()
    generated = kept = reused = 0
    batch: list[Filtered] = []
    last_commit = time.monotonic()
    progress = reporter()
    progress.start(todo.height, f"generate {rec.name}")

    def commit(failing: bool = False) -> None:
        nonlocal last_commit
        # While a failure or a Ctrl-C unwinds, store without Prefect's task machinery (it
        # sees the interrupt too and may not run the task): the plain function, same rows.
        ingest = ingest_shards.fn if failing else ingest_shards
        stored = ingest(wh, batch, rec, run_id)
        # -- committed point: every shard in `batch` is stored (traces, progress, samples) --
        log.info("stored %d shards: %d traces", len(batch), stored)
        batch.clear()
        last_commit = time.monotonic()

    def submit_filter(shard: pl.DataFrame, generated):
        if len(generated) > 3:  # a Ray replica filtered its shard already
            return done(generated[3])
        return filter_shard.submit(shard, generated[0], rec)

    t0 = time.perf_counter()
    points = SafePoints().install()  # Ctrl-C is raised between shards, not inside a lock
    try:
        for i, (shard, generated_, traces) in enumerate(
            _streamed(
                shards, submit, submit_filter, _lookahead(rec), check=points.check, hungry=hungry
            )
        ):
            out, completions, shard_reused = generated_[:3]
            if rec.is_eval:  # benchmark answers: stored as such, never as training data
                traces = traces.with_columns(
                    status=pl.lit(EVAL_STATUS), reject_reason=pl.lit(None, pl.String)
                )
            shard_redo = bool(redo) and bool(shard["problem_id"].is_in(redo_ids).any())
            reused += shard_reused
            batch.append(
                Filtered(shard, traces, out.nodes, completions, shard_redo, reuse or shard_redo)
            )
            # -- shard i generated and filtered (stored at the next commit) ---------------
            generated += traces.height
            shard_kept = int((traces["status"] == "kept").sum()) if traces.height else 0
            kept += shard_kept
            reasons.update(r for r in traces["reject_reason"].to_list() if r)
            tokens = traces["n_tokens"].sum() if "n_tokens" in traces.columns else 0
            progress.advance(shard.height, traces.height, shard_kept, tokens)
            log.info(
                "shard %d/%d: %d problems -> %d traces, %d kept (%.1f s)",
                i + 1,
                len(shards),
                shard.height,
                traces.height,
                shard_kept,
                time.perf_counter() - t0,
            )
            t0 = time.perf_counter()
            rows = sum(f.traces.height for f in batch)
            if rows >= BATCH_ROWS or time.monotonic() - last_commit >= rec.runner.commit_seconds:
                commit()
            wh.yield_to_waiters()  # another run or a reader waits: let it in between shards
            points.check()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):  # don't wait out replies still in flight
            engine.cancel()
        if batch:  # what was finished before the failure is kept
            commit(failing=True)
        raise
    finally:
        points.restore()  # a Ctrl-C after the last shard lets the run finish storing
        replicas.close()
    if batch:
        commit()
    # A re-run with other filters, or with corrected golds, re-judges what is stored.
    stale = stale_traces(previous, rec, regilded)
    refiltered = None
    if stale is None or stale:
        refiltered = refilter_stored(wh, run_id, list(rec.filters), stale)
        refiltered["why"] = "filters changed" if stale is None else "gold answers changed"
        log.info(
            "run %s: re-filtered %d stored traces (%s)",
            run_id,
            refiltered["traces"],
            refiltered["why"],
        )
    summary = {
        "run_id": run_id,
        "warehouse": str(wh.path),
        "problems": problems.height,
        "problems_generated": todo.height,
        "generated": generated,
        "kept": kept,
        "rejected": dict(reasons.most_common()),
        "seconds": round(time.perf_counter() - started, 3),
        "engine_seconds": round(engine.meter.seconds, 3),
        "engine_calls": engine.meter.calls,
        "engine_requests": engine.meter.requests,
        "engine_completions": engine.meter.completions,
        "engine_tokens": engine.meter.tokens,
        "samples_reused": reused,
    }
    if isinstance(engine, RayRunner):
        summary["replicas_start_seconds"] = round(engine.start_seconds, 3)
    if refiltered:
        summary["refiltered"] = refiltered
    if "code" in getattr(rec.generate, "verify", ()):  # model code ran in the sandbox
        summary["sandbox"] = describe_isolation()
    return summary


def _engine_for(recipe: Recipe, problems: pl.DataFrame):
    _check_engine(recipe, problems)
    return make_engine(recipe.engine)


def _check_engine(recipe: Recipe, problems: pl.DataFrame) -> None:
    uses_engine = get_generator(recipe.generate.method).uses_engine
    if recipe.engine.kind == "sim" and problems.height and uses_engine:
        unknown = [q for q in problems["question"].head(50) if plan_problem(q) is None]
        if unknown:
            raise UserError(
                f"the sim engine only solves built-in problems (builtin:arithmetic, "
                f"builtin:linear), not {recipe.problems.source!r} (e.g. {unknown[0][:80]!r}); "
                "use engine kind vllm or openai for real problem sets"
            )


def run_recipe(recipe: Recipe, warehouse: str, limit: int | None = None) -> dict:
    """Run the flow and return its summary; a user error comes back as `UserError`."""
    state = generate(recipe.to_data(), str(warehouse), limit, return_state=True)
    if state.is_failed():
        if state.message and state.message.startswith(_USER_ERROR):
            raise UserError(state.message.removeprefix(_USER_ERROR))
        state.result()  # a bug: re-raise it with its traceback
    return state.result()
