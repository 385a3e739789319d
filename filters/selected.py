"""Keep only the sample a selection picked per problem (`generators/selection.py`).

Reads the `selected` working column that `self_output` and `distill` write; other samples
fail as `not_selected`. With `filters: [format, answer, selected]` a problem keeps at most
its one picked sample, and only if it is well formed and right. A method that does not
select (no `selected` column) passes every trace.
"""

from __future__ import annotations

import polars as pl
from reasonfactory.generators.base import StrictModel


class SelectedOptions(StrictModel):
    """`selected` takes no options."""


def selected_filter(traces: pl.DataFrame, options=None) -> pl.DataFrame:
    """Verdicts `ok`, `reason` per trace.

    >>> selected_filter(pl.DataFrame({"selected": [True, False]}))["reason"].to_list()
    [None, 'not_selected']
    """
    if "selected" not in traces.columns:
        return pl.DataFrame(
            {"ok": [True] * traces.height, "reason": [None] * traces.height},
            schema={"ok": pl.Boolean, "reason": pl.String},
        )
    ok = pl.col("selected").fill_null(False)
    return traces.select(
        ok=ok, reason=pl.when(ok).then(pl.lit(None, pl.String)).otherwise(pl.lit("not_selected"))
    )
