"""`reasonfactory check answers --judge RECIPE`: the answer filter's LLM judge on JSONL lines.

The judge's options come from the recipe's `answer` filter (`filters: [{answer: {judge:
{...}}}]`, a whole recipe or a file holding only `filters`); its judgements are looked up in
and stored with the warehouse's completions, as a run's are, so running the command again
asks the judge nothing it was asked before. The rules decide first (`filters/judge.py`).
"""

from __future__ import annotations

from pathlib import Path

from reasonfactory.filters.judge import JudgedRow, JudgeOptions, judge_answers, judge_store
from reasonfactory.filters.pipeline import filter_options, parse_filter_spec
from reasonfactory.flows.recipe_files import RecipeError, read_recipe_file
from reasonfactory.generators.verify.answer import Outcome


def judge_options(path: str) -> JudgeOptions:
    """The judge of a recipe file's `answer` filter; an error names the file when it has none."""
    data = read_recipe_file(Path(path))
    items = (data.get("filters") if isinstance(data, dict) else None) or []
    try:
        specs = [parse_filter_spec(i) for i in items]
    except ValueError as exc:
        raise RecipeError(f"{path}: filters: {exc}") from None
    for spec in specs:
        if spec.name == "answer":
            judge = filter_options(spec).judge
            if judge is not None:
                return judge
    raise RecipeError(
        f"{path}: no judge in its filters; add [{{answer: {{judge: {{engine: ...}}}}}}]"
    )


def judge_lines(
    questions: list[str | None],
    golds: list[str | None],
    preds: list[str | None],
    outcomes: list[Outcome | None],
    options: JudgeOptions,
    warehouse,
) -> tuple[list[JudgedRow | None], dict]:
    """The judge's part per line, through the warehouse's completions (opened only for this),
    and counts: `asked` (requests sent), `reused` (served from the store)."""
    import polars as pl
    from reasonfactory.warehouse.store import Warehouse

    with Warehouse(warehouse) as wh:

        def lookup(keys: list[str]) -> pl.DataFrame:
            return wh.fetch("completions", pl.DataFrame({"request_key": keys}))

        with judge_store(lookup, None) as store:
            rows = judge_answers(questions, golds, preds, outcomes, options)
        fresh = store.fresh()
        if fresh is not None:
            wh.ingest_all({"completions": fresh})
    return rows, {"asked": store.asked, "reused": store.reused}


def judged_verdict(outcome: Outcome, row: JudgedRow | None) -> dict:
    """The fields a judged line adds: `verdict` (the judge's where it decided: correct, wrong,
    judge_unparsed, judge_error), `correct`, `by`, `rule`, `judge`."""
    if row is None or row.by == "rule":
        ok = outcome in (Outcome.CORRECT, Outcome.WRONG)
        extra = {"by": "rule", "rule": outcome.value, "judge": row.judge if row else None}
        return {
            "verdict": outcome.value,
            "correct": outcome is Outcome.CORRECT if ok else None,
            **extra,
        }
    known = row.judge in ("correct", "incorrect")
    verdict = {"correct": "correct", "incorrect": "wrong"}.get(row.judge, row.judge)
    correct = row.judge == "correct" if known else None
    return {
        "verdict": verdict,
        "correct": correct,
        "by": "judge",
        "rule": row.rule,
        "judge": row.judge,
    }
