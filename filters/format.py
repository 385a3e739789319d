"""Format check: one closed `<think>` block, a non-empty thought, exactly one boxed answer.

Reads the parsed columns (`thought`, `response`, `think_closed`, `finish_reason`). A trace
cut off by the token limit is `truncated`, one the engine failed on (after its retries)
`engine_error`; the rest fail as `format:<what>`.
Column expressions only: it runs at DataFrame speed.
"""

from __future__ import annotations

import polars as pl

_BOXED = r"\\(?:boxed|fbox)\s*\{"


def format_filter(traces: pl.DataFrame, options=None) -> pl.DataFrame:
    """Verdicts `ok`, `reason` per trace.

    >>> df = pl.DataFrame({"thought": ["1+1=2"], "response": ["\\\\boxed{2}"],
    ...                    "think_closed": [True], "finish_reason": ["stop"]})
    >>> format_filter(df)["ok"].to_list()
    [True]
    """
    boxed = pl.col("response").fill_null("").str.count_matches(_BOXED)
    thought = pl.col("thought").fill_null("")
    reason = (
        pl.when(pl.col("finish_reason") == "error")
        .then(pl.lit("engine_error"))
        .when(pl.col("finish_reason") == "length")
        .then(pl.lit("truncated"))
        .when(~pl.col("think_closed").fill_null(False))
        .then(pl.lit("format:unclosed_think"))
        .when(thought.str.strip_chars() == "")
        .then(pl.lit("format:empty_thought"))
        .when(thought.str.contains("</?think>"))
        .then(pl.lit("format:nested_think"))
        .when(boxed == 0)
        .then(pl.lit("format:no_boxed"))
        .when(boxed > 1)
        .then(pl.lit("format:multiple_boxed"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return traces.select(reason.alias("reason")).with_columns(ok=pl.col("reason").is_null())
