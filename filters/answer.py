"""The `answer` filter: each trace's final answer against its gold, through the checker pool.

Reads `gold`, `predicted`, `gold_source` and `checker` (generators.base.WORKING_COLUMNS);
the checking itself (math-verify guarded, in killable worker processes) is
`reasonfactory.generators.verify.answer_pool`.
"""

from __future__ import annotations

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.verify.answer import Outcome
from reasonfactory.generators.verify.answer_pool import PoolOptions, judge_answers_scored


class AnswerOptions(StrictModel):
    """`answer` filter options (all optional)."""

    timeout_s: float = Field(
        5.0, ge=0.01, le=3600, description="wall-clock limit of one check (0.01 s to 1 h)"
    )
    workers: int | None = Field(
        None, ge=1, description="checker processes (default: the machine's cores)"
    )
    memory_mb: int = Field(2048, ge=64, description="memory one check may add to its worker")
    batch: int = Field(64, ge=1, description="checks sent to a worker at a time")
    approximate: bool = Field(
        False,
        description="a decimal may match an exact gold with no finite decimal form "
        "(sqrt(2), pi, 1/3) when it is the gold rounded or cut to the places it writes",
    )
    min_score: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="a scored check (reasoning-gym's score_answer, 0 to 1) counts as correct "
        "from this score; the score is kept in meta.details.answer.score",
    )

    def pool(self) -> PoolOptions:
        return PoolOptions(
            self.timeout_s,
            self.workers,
            self.memory_mb,
            self.batch,
            self.approximate,
            self.min_score,
        )


REASONS = {
    Outcome.WRONG: "wrong_answer",
    Outcome.GOLD_UNPARSEABLE: "gold_unparseable",
    Outcome.TIMEOUT: "check_timeout",
    Outcome.ERROR: "check_error",
}


def answer_filter(traces: pl.DataFrame, options: AnswerOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `correct` for each trace (reads `gold`, `predicted`,
    `gold_source`). Reasons: wrong_answer, no_answer (nothing to read), gold_unparseable,
    check_timeout, check_error, no_gold (the problem has none), no_consensus (no gold and no
    qualified majority). A scored check (reasoning-gym) adds `detail.score`."""
    opts = AnswerOptions.model_validate(options or {})
    golds, preds = traces["gold"].to_list(), traces["predicted"].to_list()
    # Problems whose answers are not checked by equality (Countdown) carry a `checker`.
    checkers = traces["checker"].to_list() if "checker" in traces.columns else None
    checked = judge_answers_scored(golds, preds, checkers, opts.pool())
    outcomes = [c.outcome for c in checked]
    ok, reason, correct = [], [], []
    rows = zip(golds, preds, traces["gold_source"], outcomes, strict=True)
    for gold, pred, source, outcome in rows:
        if gold is None:
            ok.append(False)
            reason.append("no_consensus" if source == "none" else "no_gold")
            correct.append(None)
            continue
        ok.append(outcome is Outcome.CORRECT)
        # A reply with no answer to read is not a wrong answer: say which it is.
        missing = outcome is Outcome.WRONG and not (pred or "").strip()
        reason.append("no_answer" if missing else REASONS.get(outcome))
        correct.append(
            outcome is Outcome.CORRECT if outcome in (Outcome.CORRECT, Outcome.WRONG) else None
        )
    verdicts = pl.DataFrame(
        {"ok": ok, "reason": reason, "correct": correct},
        schema={"ok": pl.Boolean, "reason": pl.String, "correct": pl.Boolean},
    )
    scores = [c.score for c in checked]
    if any(s is not None for s in scores):  # partial credit, kept in meta.details.answer
        detail = pl.Series("detail", [{"score": s} for s in scores])
        verdicts = verdicts.with_columns(detail)
    return verdicts
