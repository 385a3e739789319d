"""Step verification of a whole trace: every arithmetic claim of its thought must hold.

The thought is split into its step paragraphs and each goes through the step verifier the
`tree` method uses (`generators.verify.steps.check_equations`: exact arithmetic, a strict
parser, model text never evaluated). The first false claim rejects the trace as
`false_step`; `min_claims` rejects a thought with fewer checkable claims as `no_claims`
(a trace that shows no work cannot be verified). `meta.details.steps` records how many
claims were checked and, for a failure, the claim and its expected value.

With no gold answer, this and a majority vote are what keep a self-generated trace: an
answer that the samples agree on, reached through steps that are all true.
"""

from __future__ import annotations

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.verify.claims import find_equations
from reasonfactory.generators.verify.steps import check_equations, fixed_errors, prose_of


class StepsOptions(StrictModel):
    """`steps` filter options."""

    min_claims: int = Field(1, ge=0, description="least number of checkable claims")
    allow_fixed: bool = Field(
        False,
        description="a false step passes when a later step makes a true claim with the same "
        "left side (a journey trace's detour: error, feedback, correction)",
    )


def steps_filter(traces: pl.DataFrame, options: StepsOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `detail` {claims, claim, expected}.

    >>> steps_filter(pl.DataFrame({"thought": ["Step 1: 2 + 3 = 5.", "Step 1: 2 + 3 = 6.",
    ...     "First add the two.\\n\\nSo 2 + 3 = 5.", "I am not sure."]}))["reason"].to_list()
    [None, 'false_step', None, 'no_claims']
    """
    opts = StepsOptions.model_validate(options or {})
    ok, reason, detail = [], [], []
    for thought in traces["thought"].to_list():
        verdict, info = _judge(thought or "", opts.min_claims, opts.allow_fixed)
        ok.append(verdict is None)
        reason.append(verdict)
        detail.append(info)
    return pl.DataFrame(
        {"ok": ok, "reason": reason, "detail": detail},
        schema={
            "ok": pl.Boolean,
            "reason": pl.String,
            "detail": pl.Struct({"claims": pl.Int64, "claim": pl.String, "expected": pl.String}),
        },
    )


def _judge(thought: str, min_claims: int, allow_fixed: bool = False) -> tuple[str | None, dict]:
    claims = 0
    fixed = allow_fixed and fixed_errors(thought)
    corrected = bool(fixed) and fixed[0] == fixed[1]  # every false step fixed later
    for step in thought.split("\n\n"):
        prose = prose_of(step)
        check = check_equations(prose)
        if check.ok is False and corrected:
            claims += len(find_equations(prose))  # a false step the trace fixes later
            continue
        if check.ok is None:
            continue  # nothing checkable in this paragraph (prose): not false, no claim
        if not check.ok:
            return "false_step", {
                "claims": claims,
                "claim": check.claim,
                "expected": check.expected,
            }
        claims += len(find_equations(prose))
    if claims < min_claims:
        return "no_claims", {"claims": claims, "claim": None, "expected": None}
    return None, {"claims": claims, "claim": None, "expected": None}
