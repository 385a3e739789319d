"""Self-consistency: the majority answer per problem and its share, plus an optional
pass-rate band per problem.

Per problem (over all its traces in the frame): answers are grouped by `answer_key` (a
cheap normal form, so `\\dfrac{1}{2}` and `\\frac{1}{2}` vote together); the majority is
the most voted key (ties: the smaller key), its share = votes / traces. Rules:
- `min_share`: a problem whose majority share is below it has no consensus: all its traces
  are `no_consensus` (self-consistency without a gold answer, tau ~ 0.5);
- `agree`: a trace whose answer is not the majority's is `minority_answer`;
- `pass_rate: [lo, hi]`: keep problems whose sampled accuracy (share of `correct` traces,
  from the answer filter that must run before) lies in [lo, hi], as open-r1 does to drop
  trivial and hopeless problems: below is `too_hard`, above is `too_easy`.
`meta.details.vote` records {majority, share, pass_rate}.
"""

from __future__ import annotations

import polars as pl
from pydantic import Field, model_validator
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.verify.answers import answer_key


class VoteOptions(StrictModel):
    """`vote` filter options (all optional)."""

    min_share: float = Field(0.5, ge=0, le=1, description="least majority share (0: off)")
    agree: bool = Field(True, description="reject traces whose answer is not the majority's")
    pass_rate: tuple[float, float] | None = Field(
        None, description="[lo, hi]: keep problems whose sampled accuracy is within"
    )

    @model_validator(mode="after")
    def _band(self):
        if self.pass_rate is not None:
            lo, hi = self.pass_rate
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"pass_rate [lo, hi] needs 0 <= lo <= hi <= 1, got {[lo, hi]}")
        return self


def vote_filter(traces: pl.DataFrame, options: VoteOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `detail` {majority, share, pass_rate}."""
    opts = VoteOptions.model_validate(options or {})
    keys = pl.Series("_key", [answer_key(p) for p in traces["predicted"]], dtype=pl.String)
    frame = traces.select("problem_id", "trace_id", "predicted").with_columns(keys)
    if opts.pass_rate is not None:
        frame = frame.with_columns(_correct=traces["correct"].fill_null(False))
    majority = (
        frame.filter(pl.col("_key").is_not_null())
        .group_by("problem_id", "_key")
        .agg(_votes=pl.len(), _shown=pl.col("predicted").sort_by("trace_id").first())
        .sort("problem_id", "_votes", "_key", descending=[False, True, False])
        .group_by("problem_id", maintain_order=True)
        .first()
        .rename({"_key": "_majority_key"})
    )
    per_problem = frame.group_by("problem_id").agg(
        _n=pl.len(), **({"_rate": pl.col("_correct").mean()} if opts.pass_rate else {})
    )
    frame = frame.join(per_problem, on="problem_id", how="left", maintain_order="left").join(
        majority, on="problem_id", how="left", maintain_order="left"
    )
    share = (pl.col("_votes").fill_null(0) / pl.col("_n")).round(6)
    rules = []
    if opts.pass_rate is not None:
        lo, hi = opts.pass_rate
        rules += [(pl.col("_rate") < lo, "too_hard"), (pl.col("_rate") > hi, "too_easy")]
    if opts.min_share > 0:
        rules.append((share < opts.min_share, "no_consensus"))
    if opts.agree:
        rules.append(
            (
                pl.col("_key").is_null() | (pl.col("_key") != pl.col("_majority_key")),
                "minority_answer",
            )
        )
    reason = pl.lit(None, dtype=pl.String)
    if rules:
        expr = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
        for cond, name in rules[1:]:
            expr = expr.when(cond).then(pl.lit(name))
        reason = expr.otherwise(pl.lit(None, dtype=pl.String))
    detail = {"majority": pl.col("_shown"), "share": share}
    if opts.pass_rate is not None:
        detail["pass_rate"] = pl.col("_rate").round(6)
    return frame.select(ok=reason.is_null(), reason=reason, detail=pl.struct(**detail))
