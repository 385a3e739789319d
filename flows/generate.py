"""The `generate` flow: load problems -> what is left to do -> shards through a runner ->
store -> re-judge what is stale.

Who owns what:
- `ShardRunner` (flows/runners.py; local or Ray) generates and filters shards, never stores;
  `stream` hands it shards and yields their results in the order they finish.
- `Committer` (flows/committer.py) stores: each completion within a second of its arrival,
  finished shards in one transaction every `runner.commit_seconds`, and what is finished
  when the run fails or is interrupted.
- `RunIdentity` (generators/identity.py) says what run this is; the progress ledger
  (`pending_problems`) says which of its problems are left; `stale_problems` which stored
  traces were judged by other filters or against another gold, and are judged again.
- `start` / `finish` (flows/run_record.py) record the run; `run_lock` keeps a second process
  on the same run waiting until the first is done, instead of doing the work twice.

Runs on Prefect's ephemeral API by default (no server to start); `schedule` and `deploy`
serve the same flow as a deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed
from reasonfactory.filters.pipeline import parse_filter_spec
from reasonfactory.flows.committer import Committer
from reasonfactory.flows.interrupts import SafePoints
from reasonfactory.flows.preflight import check_recipe
from reasonfactory.flows.progress import reporter
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.flows.refilter import refilter_stored
from reasonfactory.flows.run_record import finish, start
from reasonfactory.flows.runners import LocalRunner, ShardRunner, stream
from reasonfactory.flows.scoring import rescore_run
from reasonfactory.generators.engines.cached import needs_rerun
from reasonfactory.generators.engines.sim import sim_solves
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.registry import get_generator
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.locking import run_lock
from reasonfactory.warehouse.store import Warehouse

_USER_ERROR = "user error: "


@task(cache_policy=NONE)
def load_problems_task(recipe: Recipe, limit: int | None) -> pl.DataFrame:
    p = recipe.problems
    if p.curriculum is not None:
        raise UserError(
            "a recipe with problems.curriculum runs in rounds: `reasonfactory run RECIPE`"
        )
    return load_problems(
        p.source,
        fields=p.fields,
        answer_format=p.answer_format,
        limit=p.limit if limit is None else limit,
        seed=p.seed,
        difficulty=p.difficulty,
        split=p.split,
        name=p.name,
        size=p.size,
        config=p.config,
        level=p.level,
        families=p.families,
    )


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def store_problems(wh: Warehouse, problems: pl.DataFrame) -> int:
    """Store new problems and corrected golds; returns how many are new. A changed gold is
    found again at the end of the run (`stale_problems`), also by a run that follows a
    crash: nothing about it lives only in this process."""
    wh.update_golds(problems)
    return wh.ingest("problems", problems)


@dataclass(frozen=True)
class Pending:
    """What a run still has to do."""

    problems: pl.DataFrame  # never stored, or stored with failed or truncated samples
    redo: set[str]  # of those, the ones stored before: their rows are replaced
    lookups: bool  # this engine has stored samples: look them up before asking it


@task(cache_policy=NONE)
def pending_problems(wh: Warehouse, problems: pl.DataFrame, recipe: Recipe) -> Pending:
    """Problems this recipe's fingerprint has not finished yet (the resume rule): never
    stored, or stored with failed samples or samples truncated below today's max_tokens."""
    keys = problems.select(
        fingerprint=pl.lit(recipe.fingerprint),
        method=pl.lit(recipe.generate.method),
        problem_id=pl.col("problem_id"),
    )
    done = wh.fetch("progress", keys)
    stored = wh.sql("SELECT 1 FROM completions WHERE engine = ? LIMIT 1", [recipe.engine_id])
    redo = done.filter(needs_rerun(getattr(recipe.generate, "max_tokens", None)))["problem_id"]
    finished = done.filter(~pl.col("problem_id").is_in(redo.implode()))
    todo = problems.join(finished.select("problem_id"), on="problem_id", how="anti")
    return Pending(todo, set(redo.to_list()), stored.height > 0)


def stale_problems(wh: Warehouse, recipe: Recipe, previous: str | None) -> set[str] | None:
    """The run's problems whose stored traces no longer carry today's verdicts: `None` (all
    of them) when the filters changed since the run's last recipe; otherwise those judged
    against another gold than the problem's now (a corrected answer key). Read from the
    traces themselves (`meta.gold`), so a gold corrected by a run that then crashed is
    still judged again by the next one. A run whose answers are withheld
    (`problems.withheld`, the loop's rounds) is never judged again for a stored gold."""
    if previous is not None:
        try:
            before = (yaml.safe_load(previous) or {}).get("filters") or []
            if [parse_filter_spec(f) for f in before] != list(recipe.filters):
                return None
        except (ValueError, yaml.YAMLError):  # a recipe stored by an older version
            return None
    stale = wh.sql(
        "SELECT DISTINCT t.problem_id FROM traces t JOIN problems p USING (problem_id) "
        "WHERE t.run_id = ? AND p.gold IS NOT NULL AND t.meta->>'gold_source' IS NOT NULL "
        "AND (t.meta->>'gold_source' <> 'problem' OR t.meta->>'gold' IS DISTINCT FROM p.gold)",
        [recipe.run_id],
    )
    return set() if recipe.problems.withheld else set(stale["problem_id"].to_list())


def open_runner(recipe: Recipe, wh: Warehouse, todo: Pending, sink) -> ShardRunner:
    """The runner the recipe asks for; its engine is checked against the problems first."""
    uses_engine = get_generator(recipe.generate.method).uses_engine
    if recipe.engine.kind == "sim" and todo.problems.height and uses_engine:
        unknown = [q for q in todo.problems["question"].head(50) if not sim_solves(q)]
        if unknown:
            raise UserError(
                f"the sim engine only solves built-in problems (builtin:arithmetic, builtin:code, "
                f"builtin:linear), not {recipe.problems.source!r} (e.g. {unknown[0][:80]!r}); "
                "use engine kind vllm or openai for real problem sets"
            )
    if recipe.runner.kind == "ray" and todo.problems.height:
        from reasonfactory.flows.ray_runner import RayRunner

        return RayRunner(recipe, recipe.run_id)
    return LocalRunner(recipe, recipe.run_id, wh, sink, todo.redo, todo.lookups)


@flow(name="generate", log_prints=False)
def generate(recipe: dict, warehouse: str, limit: int | None = None) -> dict:
    """Run a recipe end to end; returns a summary (counts, timings, where it is stored)."""
    rec = parse_recipe(recipe)
    with run_lock(Path(warehouse), rec.run_id), Warehouse(warehouse) as wh:
        previous = start(wh, rec)
        try:
            summary = _run(wh, rec, limit, previous)
        except UserError as exc:
            finish(wh, rec.run_id, "failed", {"error": str(exc)})
            return Failed(message=_USER_ERROR + str(exc))
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            finish(wh, rec.run_id, status, {"error": repr(exc)})
            raise
        finish(wh, rec.run_id, "completed", summary)
        return summary


def _run(wh: Warehouse, rec: Recipe, limit: int | None, previous: str | None) -> dict:
    log, started = get_run_logger(), time.perf_counter()
    problems = load_problems_task(rec, limit)
    added = store_problems(wh, problems)
    todo = pending_problems(wh, problems, rec)
    log.info(
        "run %s: %d problems (%d new in the warehouse), %d still to generate (%d redone)",
        *(rec.run_id, problems.height, added, todo.problems.height, len(todo.redo)),
    )
    size = rec.generate.shard_size
    shards = [todo.problems.slice(i, size) for i in range(0, todo.problems.height, size)]
    committer = Committer(wh, rec, rec.run_id, todo.redo, todo.lookups, log)
    progress = reporter()
    progress.start(todo.problems.height, f"generate {rec.name}")
    points = SafePoints().install()  # Ctrl-C is raised between shards, not inside a lock
    runner = None
    try:
        runner = open_runner(rec, wh, todo, committer.journal.add)
        lookahead = rec.runner.lookahead
        grow = lookahead is None
        for i, result in enumerate(
            stream(shards, runner, runner.lookahead() if grow else lookahead, grow, points.check)
        ):
            committer.add(result)
            tokens = result.traces["n_tokens"].sum() if "n_tokens" in result.traces.columns else 0
            progress.advance(result.problems.height, result.traces.height, result.kept, tokens)
            log.info(
                "shard %d/%d done: %d problems -> %d traces, %d kept",
                *(i + 1, len(shards), result.problems.height, result.traces.height, result.kept),
            )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and runner is not None:
            runner.cancel()  # don't wait out replies still in flight
        committer.close(failing=True)  # what was finished before the failure is kept
        raise
    finally:
        points.restore()  # a Ctrl-C after the last shard lets the run finish storing
        if runner is not None:
            runner.close()
    committer.close()
    refiltered = _rejudge(wh, rec, previous, log)
    return _summary(wh, rec, problems, todo, committer, runner, started, refiltered)


def _rejudge(wh: Warehouse, rec: Recipe, previous: str | None, log) -> dict | None:
    """A re-run with other filters, or with corrected golds, re-judges what is stored."""
    stale = stale_problems(wh, rec, previous)
    if stale is not None and not stale:
        return None
    refiltered = refilter_stored(wh, rec.run_id, list(rec.filters), stale, rec.kind)
    refiltered["why"] = "filters changed" if stale is None else "gold answers changed"
    if rec.kind == "eval":  # its metrics follow its re-judged answers
        refiltered["rescored"] = rescore_run(wh, rec.run_id)
    log.info("run %s: re-filtered %d stored traces", rec.run_id, refiltered["traces"])
    return refiltered


def _summary(wh, rec, problems, todo, committer, runner, started, refiltered) -> dict:
    meter = runner.meter()
    summary = {
        "run_id": rec.run_id,
        "warehouse": str(wh.path),
        "problems": problems.height,
        "problems_generated": todo.problems.height,
        "generated": committer.generated,
        "kept": committer.kept,
        "rejected": dict(committer.reasons.most_common()),
        "seconds": round(time.perf_counter() - started, 3),
        "engine_seconds": round(meter.seconds, 3),
        "engine_calls": meter.calls,
        "engine_requests": meter.requests,
        "engine_completions": meter.completions,
        "engine_tokens": meter.tokens,  # generated by the engine in this invocation
        "samples_reused": committer.reused,
        "tokens_reused": committer.tokens_reused,  # served from the completions table
        "completions_stored": committer.journal.stored,
        **runner.describe(),
    }
    if refiltered:
        summary["refiltered"] = refiltered
    sandbox = sandbox_seen(wh, rec.run_id)
    if sandbox:  # model code ran in the sandbox: what it ran under, as each child reported
        summary["sandbox"] = sandbox
    return summary


def sandbox_seen(wh: Warehouse, run_id: str) -> str | None:
    """The sandbox layers the run's code actually ran under, as its children reported them
    (tree code steps: `nodes.meta.check.sandbox`; code answers:
    `traces.meta.details.answer.sandbox`), with how many runs of each; None when none ran."""
    seen = wh.sql(
        "SELECT layers, count(*) AS n FROM ("
        " SELECT meta->'check'->>'sandbox' AS layers FROM nodes WHERE run_id = ?"
        " UNION ALL SELECT meta->'details'->'answer'->>'sandbox' FROM traces WHERE run_id = ?"
        ") WHERE layers IS NOT NULL AND layers <> '' GROUP BY layers ORDER BY n DESC",
        [run_id, run_id],
    )
    if seen.height == 0:
        return None
    return "; ".join(f"{layers} ({n} runs)" for layers, n in seen.iter_rows())


def run_recipe(recipe: Recipe, warehouse: str, limit: int | None = None) -> dict:
    """Run the flow and return its summary; a user error comes back as `UserError`."""
    check_recipe(recipe)  # before Prefect, an engine or a shard: what cannot work here
    state = generate(recipe.to_data(), str(warehouse), limit, return_state=True)
    if state.is_failed():
        if state.message and state.message.startswith(_USER_ERROR):
            raise UserError(state.message.removeprefix(_USER_ERROR))
        state.result()  # a bug: re-raise it with its traceback
    return state.result()
