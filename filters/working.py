"""The working columns filters read, for fresh traces and for stored ones.

Generators hand fresh traces to the filters with `gold`, `gold_source`, `finish_reason` and
`think_closed` (generators.base.WORKING_COLUMNS); `with_questions` adds the problem text
(decontamination reads it). Stored traces lose the working columns at ingest, so
`rebuild_working_columns` derives them again from the warehouse: the gold from
`problems.gold` (so a corrected gold takes effect), or, for a problem without one, the gold
the generator found and recorded in `meta.gold`/`meta.gold_source` (a majority, a tree's
answers, a confidence or best-of-n pick; older traces: `meta.majority_answer`), and
`finish_reason`/`think_closed` from `meta`, the answer `checker` (Countdown) from the
problem text, and the generator's own rejection (`generator_reason`) from the stored
`meta.verdicts.generate`. That is what lets `refilter` re-apply filters without generating
anything.

Pure frame functions; reading and writing the warehouse is the caller's.
"""

from __future__ import annotations

import polars as pl
from reasonfactory.generators.verify.checkers import attach_checkers


def with_questions(traces: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The traces with their problem's `question` (left as is when already there)."""
    if "question" in traces.columns or traces.height == 0:
        return traces
    return traces.join(
        problems.select("problem_id", "question").unique("problem_id"),
        on="problem_id",
        how="left",
        maintain_order="left",
    )


def _meta(field: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col("meta").str.json_path_match(f"$.{field}").cast(dtype, strict=False)


def rebuild_working_columns(traces: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """Stored traces (all `traces` columns) -> the same with `gold`, `gold_source`,
    `finish_reason`, `think_closed`, `checker`, `generator_reason` and `question` as at
    generation time.

    >>> t = pl.DataFrame({"problem_id": ["p"], "response": ["\\\\boxed{2}"],
    ...     "meta": ['{"finish_reason": "stop", "think_closed": true}']})
    >>> p = pl.DataFrame({"problem_id": ["p"], "question": ["1+1?"], "gold": ["2"]})
    >>> rebuild_working_columns(t, p).select("gold", "gold_source", "think_closed").row(0)
    ('2', 'problem', True)
    """
    stored = problems.select("problem_id", "question", pl.col("gold").alias("_problem_gold"))
    frame = traces.drop("question", "gold", "gold_source", "generator_reason", strict=False).join(
        stored.unique("problem_id"), on="problem_id", how="left", maintain_order="left"
    )
    recorded_source = _meta("gold_source", pl.String)
    recorded_gold = pl.coalesce(
        _meta("gold", pl.String),
        pl.when(recorded_source == "majority").then(_meta("majority_answer", pl.String)),
    )
    # A gold the generator found (majority, tree answers, confidence/best_of_n selection).
    found = ~recorded_source.is_in(["problem", "none"]) & recorded_gold.is_not_null()
    target = _meta("target", pl.String)  # Countdown generators record the target
    generate = _meta("verdicts.generate", pl.String)
    frame = frame.with_columns(_problem_gold=pl.coalesce(pl.col("_problem_gold"), target))
    if frame.select(generate.is_not_null().any()).item():  # the generator gave verdicts
        frame = frame.with_columns(generator_reason=pl.when(generate != "ok").then(generate))
    frame = attach_checkers(frame.drop("checker", strict=False), problems)
    return frame.with_columns(
        gold=pl.when(pl.col("_problem_gold").is_not_null())
        .then(pl.col("_problem_gold"))
        .when(found)
        .then(recorded_gold),
        gold_source=pl.when(pl.col("_problem_gold").is_not_null())
        .then(pl.lit("problem"))
        .when(found)
        .then(recorded_source)
        .otherwise(pl.lit("none")),
        finish_reason=_meta("finish_reason", pl.String),
        think_closed=pl.col("meta")
        .str.json_path_match("$.think_closed")
        .replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        .fill_null(pl.col("response").fill_null("").str.len_chars() > 0),
    ).drop("_problem_gold")
