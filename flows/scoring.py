"""Scoring an eval run: its stored samples -> the `evals` rows (pass@1, pass@k, maj@k).

`eval` scores a run right after generating it (flows/evaluate.py); a run re-judged later
(a corrected gold found by a re-run, or `refilter` on the eval run) is scored again here, so
`evals` always matches the traces' `correct` values.

Not here: the metrics (warehouse/evals.py) or the answer check (generators/verify/).
"""

from __future__ import annotations

import polars as pl
from reasonfactory.generators.verify.answers import answer_key
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import eval_rows
from reasonfactory.warehouse.store import Warehouse


def score_run(wh: Warehouse, run_id: str, *, model: str, benchmark: str, source: str):
    """Score the run's stored samples, replace its `evals` rows, and return them."""
    samples = wh.sql(
        "SELECT t.problem_id, (t.meta->>'sample_index')::BIGINT AS sample_index, "
        "t.predicted, coalesce(t.correct, false) AS correct, p.source, p.gold, "
        "p.meta->>'difficulty' AS difficulty "
        "FROM traces t JOIN problems p USING (problem_id) WHERE t.run_id = ?",
        [run_id],
    )
    no_gold = samples.filter(pl.col("gold").is_null())
    if no_gold.height:
        raise UserError(
            f"eval needs a gold answer for every problem; {no_gold['problem_id'].n_unique()} "
            f"problems of {source!r} have none"
        )
    samples = samples.with_columns(
        answer=pl.Series([answer_key(p) for p in samples["predicted"]], dtype=pl.String)
    )
    rows = eval_rows(samples, model=model, benchmark=benchmark, run_id=run_id)
    wh.ingest_all({"evals": rows}, replace={"evals": ("run_id",)})
    return rows


def rescore_run(wh: Warehouse, run_id: str) -> int:
    """Score a re-judged eval run again under the model and benchmark it was scored as;
    returns the rows written (0 when it was never scored: `eval` will score it)."""
    named = wh.sql(
        "SELECT DISTINCT model, benchmark FROM evals WHERE run_id = ? ORDER BY 1, 2", [run_id]
    )
    if not named.height:
        return 0
    model, benchmark = named.row(0)
    return score_run(wh, run_id, model=model, benchmark=benchmark, source=benchmark).height
