"""The `refilter` flow: re-apply a filter set to a run's stored traces, generating nothing.

Reads the run's traces in batches of whole problems (rules like dedup and vote look at all
of a problem's traces), rebuilds the working columns from the warehouse
(`reasonfactory.filters.working`), applies the filters and overwrites each batch in one transaction
(`Warehouse.replace`): every trace is kept, only `status`, `reject_reason`, `correct`,
`lang` and `meta` change. Re-running it with the same filters changes nothing. The run's
stored recipe then lists the filters last applied, so `stats` shows the right funnel.
An `eval` run is re-judged with its own filters only (its answer check against today's
golds): its traces keep status 'eval', out of every export, and its `evals` rows are
scored again (flows/scoring.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import polars as pl
import yaml
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed
from reasonfactory.filters.judge import judge_store
from reasonfactory.filters.pipeline import FilterSpec, check_filter_order, parse_filter_spec
from reasonfactory.filters.working import rebuild_working_columns
from reasonfactory.flows.progress import reporter
from reasonfactory.flows.scoring import rescore_run
from reasonfactory.flows.shards import judge
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import eval_run_reason
from reasonfactory.warehouse.store import Warehouse

_USER_ERROR = "user error: "
BATCH_TRACES = 20_000


def stored_filters(warehouse: str, run_id: str) -> list[FilterSpec]:
    """The filters of a run's stored recipe; a missing run is a user error naming the runs."""
    with Warehouse(warehouse, read_only=True) as wh:
        recipe = _stored_recipe(wh, run_id)
        if recipe is None:
            known = [r[0] for r in wh.con.execute("SELECT run_id FROM runs").fetchall()]
            raise UserError(
                f"no run {run_id!r} in {wh.path}; runs: {', '.join(known) or 'none yet'}"
            )
    return [parse_filter_spec(i) for i in recipe.get("filters") or []]


def withholds_answers(wh: Warehouse, run_id: str) -> bool:
    """Whether the run's stored recipe withholds its problems' answers (`problems.withheld`)."""
    problems = (_stored_recipe(wh, run_id) or {}).get("problems")
    return isinstance(problems, dict) and problems.get("withheld") is True


def _stored_recipe(wh: Warehouse, run_id: str) -> dict | None:
    """The run's recipe as stored (`runs.recipe`); None for a run the warehouse lacks."""
    rows = wh.con.execute("SELECT recipe FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        return None
    recipe = yaml.safe_load(rows[0][0] or "")
    return recipe if isinstance(recipe, dict) else {}


def filters_from_file(path: str) -> list[FilterSpec]:
    """Filters from a recipe file, or from a YAML holding only `filters: [...]`."""
    from pathlib import Path

    from reasonfactory.flows.recipe import RecipeError, load_recipe, read_recipe_file

    p = Path(path)
    data = read_recipe_file(p)  # the same rules as a recipe (UTF-8, no aliases, no repeats)
    if isinstance(data, dict) and set(data) == {"filters"}:
        try:
            specs = [parse_filter_spec(i) for i in data["filters"] or []]
            check_filter_order(specs)
        except ValueError as exc:
            raise RecipeError(f"{path}: filters: {exc}") from None
        return specs
    return list(load_recipe(p).filters)


def run_kind(warehouse: str | Warehouse, run_id: str) -> str:
    """`eval` for an eval run (its kind, or traces stored with status 'eval'), else `data`."""
    with _opened.fn(warehouse, read_only=True) as wh:
        return "eval" if eval_run_reason(wh.con, run_id) else "data"


@task(cache_policy=NONE)
@contextmanager
def _opened(warehouse: str | Warehouse, read_only: bool = False) -> Iterator[Warehouse]:
    """The warehouse a flow already holds (a run re-filtering its own traces: DuckDB refuses a
    second connection with other settings in one process), or the file opened for this use."""
    if isinstance(warehouse, Warehouse):
        yield warehouse
    else:
        with Warehouse(warehouse, read_only=read_only) as wh:
            yield wh


def problem_batches(warehouse: str | Warehouse, run_id: str, batch_traces: int) -> list[list[str]]:
    """The run's problems in batches of about `batch_traces` traces."""
    with _opened(warehouse, read_only=True) as wh:
        counts = wh.sql(
            "SELECT problem_id, count(*) AS n FROM traces WHERE run_id = ? GROUP BY 1 ORDER BY 1",
            [run_id],
        )
    batches, current, n = [], [], 0
    for pid, count in counts.iter_rows():
        if current and n + count > batch_traces:
            batches.append(current)
            current, n = [], 0
        current.append(pid)
        n += count
    if current:
        batches.append(current)
    return batches


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[1, 5])
def refilter_batch(
    warehouse: str | Warehouse,
    run_id: str,
    problem_ids: list[str],
    specs: list[FilterSpec],
    kind: str = "data",
) -> pl.DataFrame:
    keys = pl.DataFrame({"problem_id": problem_ids})
    with _opened(warehouse) as wh:
        wh.con.register("_rf_keys", keys)
        try:
            traces = wh.sql(
                "SELECT t.* FROM traces t JOIN _rf_keys k USING (problem_id) "
                "WHERE t.run_id = ? ORDER BY t.trace_id",
                [run_id],
            )
            # a run that withholds answers (the loop's rounds) is judged as it was made:
            # without a gold the warehouse holds for its problems
            gold = "NULL::VARCHAR AS gold" if withholds_answers(wh, run_id) else "p.gold"
            problems = wh.sql(
                f"SELECT p.problem_id, p.question, {gold}, p.meta FROM problems p "
                "JOIN _rf_keys k USING (problem_id)"
            )
        finally:
            wh.con.unregister("_rf_keys")

        def lookup(keys: list[str]) -> pl.DataFrame:
            return wh.fetch("completions", pl.DataFrame({"request_key": keys}))

        # an answer filter's LLM judge: stored judgements are reused, new ones stored
        with judge_store(lookup, None) as store:
            filtered = judge(rebuild_working_columns(traces, problems), specs, kind)
        judgements = store.fresh()
        if judgements is not None:
            wh.ingest_all({"completions": judgements})
        wh.replace("traces", filtered)
    return filtered.select("status", "reject_reason")


def refilter_stored(
    warehouse: str | Warehouse,
    run_id: str,
    specs: list[FilterSpec],
    problem_ids: set[str] | None = None,
    kind: str = "data",
) -> dict:
    """Re-apply `specs` to the run's stored traces (all, or those of `problem_ids`) from inside
    another flow (`generate` does when a run's filters or golds changed); returns counts."""
    batches = problem_batches(warehouse, run_id, BATCH_TRACES)
    if problem_ids is not None:
        batches = [b for b in ([p for p in b if p in problem_ids] for b in batches) if b]
    traces = kept = 0
    for batch in batches:
        verdicts = refilter_batch(warehouse, run_id, batch, specs, kind)
        traces += verdicts.height
        kept += int((verdicts["status"] == "kept").sum())
    return {"problems": sum(map(len, batches)), "traces": traces, "kept": kept}


@flow(name="refilter", log_prints=False)
def refilter(run_id: str, warehouse: str, filters: list | None = None) -> dict:
    """Re-apply `filters` (default: the run's own) to the stored traces of `run_id`."""
    log = get_run_logger()
    started = time.perf_counter()
    try:
        specs = (
            [parse_filter_spec(f) for f in filters]
            if filters is not None
            else stored_filters(warehouse, run_id)
        )
        check_filter_order(specs)
        own = stored_filters(warehouse, run_id)  # the run exists
        kind = run_kind(warehouse, run_id)
        if kind == "eval" and specs != own:
            raise UserError(
                f"run {run_id} is an eval run: its traces are benchmark answers, judged only "
                "by its own filters (the answer check against today's golds); run "
                f"`reasonfactory refilter --run {run_id}` without --recipe to re-judge and "
                "re-score it"
            )
        batches = problem_batches(warehouse, run_id, BATCH_TRACES)
        reasons: Counter = Counter()
        total = kept = 0
        progress = reporter()
        progress.start(sum(len(b) for b in batches), f"refilter {run_id}")
        for i, batch in enumerate(batches):
            t0 = time.perf_counter()
            verdicts = refilter_batch(warehouse, run_id, batch, specs, kind)
            total += verdicts.height
            batch_kept = int((verdicts["status"] == "kept").sum())
            kept += batch_kept
            reasons.update(r for r in verdicts["reject_reason"].to_list() if r)
            progress.advance(len(batch), verdicts.height, batch_kept)
            log.info(
                "batch %d/%d: %d problems, %d traces, %d kept (%.1f s)",
                i + 1,
                len(batches),
                len(batch),
                verdicts.height,
                batch_kept,
                time.perf_counter() - t0,
            )
        summary = {
            "run_id": run_id,
            "warehouse": str(warehouse),
            "filters": [f.name if not f.options else {f.name: f.options} for f in specs],
            "traces": total,
            "kept": kept,
            "rejected": dict(reasons.most_common()),
            "seconds": round(time.perf_counter() - started, 3),
        }
        _record(warehouse, run_id, summary)
        if kind == "eval":
            with Warehouse(warehouse) as wh:
                summary["rescored"] = rescore_run(wh, run_id)
        return summary
    except (UserError, ValueError) as exc:
        return Failed(message=_USER_ERROR + str(exc))


def _record(warehouse: str, run_id: str, summary: dict) -> None:
    """The run's recipe lists the filters last applied; its meta says when and with what."""
    with Warehouse(warehouse) as wh:
        ((recipe, meta),) = wh.con.execute(
            "SELECT recipe, meta FROM runs WHERE run_id = ?", [run_id]
        ).fetchall()
        data = yaml.safe_load(recipe or "") or {}
        data["filters"] = summary["filters"]
        m = json.loads(meta) if meta else {}
        m["refilter"] = {**summary, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        wh.con.execute(
            "UPDATE runs SET recipe = ?, meta = ? WHERE run_id = ?",
            [yaml.safe_dump(data, sort_keys=False), json.dumps(m), run_id],
        )


def run_refilter(run_id: str, warehouse: str, filters: list[FilterSpec] | None = None) -> dict:
    """Run the flow and return its summary; a user error comes back as `UserError`."""
    data = (
        None
        if filters is None
        else [f.name if not f.options else {f.name: f.options} for f in filters]
    )
    state = refilter(run_id, str(warehouse), data, return_state=True)
    if state.is_failed():
        if state.message and state.message.startswith(_USER_ERROR):
            raise UserError(state.message.removeprefix(_USER_ERROR))
        state.result()
    return state.result()
