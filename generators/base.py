"""What every generator shares: its inputs (`RunContext`) and its output (`Generated`).

A generator is one function `(problems, engine, config, ctx) -> Generated`, registered by
name in `generators.registry`. It returns candidate traces (the `traces` columns plus the
working columns filters read: `gold`, `gold_source`, `finish_reason`, `think_closed`,
`selected`) and, for search methods, tree nodes. It neither filters nor stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict

APPROX_TOKENS = "approx:utf8_bytes/4"  # the length filter's approximation, same name


def approx_tokens(*texts: str) -> int:
    """Tokens of text no engine sampled as a whole (sos search, journey rewrites), named
    `APPROX_TOKENS`: UTF-8 bytes / 4 per text, rounded up, whatever the engine.

    >>> approx_tokens("abcdefgh", "abc")
    3
    """
    return sum((len(t.encode("utf-8")) + 3) // 4 for t in texts)


class StrictModel(BaseModel):
    """A frozen config: an unknown key is an error, and so is an infinite or NaN number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class RunContext:
    run_id: str
    fingerprint: str
    model: str


@dataclass(frozen=True)
class Generated:
    traces: pl.DataFrame
    nodes: pl.DataFrame | None = None


# Columns generators add for the filters; they are not stored as columns (meta keeps them).
WORKING_COLUMNS = {
    "gold": pl.String(),
    "gold_source": pl.String(),
    "finish_reason": pl.String(),
    "think_closed": pl.Boolean(),
    "selected": pl.Boolean(),  # the sample a selection picked (generators/selection.py)
    # How the answer is checked when not by equality with `gold` (verify/checkers.py).
    "checker": pl.String(),
    # The generator's own reason to reject a trace (a failed search), applied before filters.
    "generator_reason": pl.String(),
}
