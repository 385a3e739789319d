"""Step verification of a whole trace: every arithmetic claim of its thought must hold.

The thought is split into its step paragraphs and each goes through the step verifier the
`tree` method uses (`generators.verify.steps.check_equations`: exact arithmetic, a strict
parser, model text never evaluated). The first false claim rejects the trace as
`false_step`; `min_claims` rejects a thought with fewer checkable claims as `no_claims`
(a trace that shows no work cannot be verified). `answer_in_steps` rejects, as
`answer_not_in_steps`, a numeric final answer that no equation of the thought results in
(true steps, then a slip when writing the answer: `28 - 23 = 5`, then `\boxed{55}`); a
dollar result counts in cents too (`$0.25` each, 25), and a whole answer may round a result
where the thought says it rounds (`54 / 8 = 6.75` packs, "round 6.75 up", 7).
Algebra (`3 + 2x = 21`, `2x = 18`, `x = 9`) is checked at the value the thought states for
its unknown (`generators.verify.algebra`), or for each of its unknowns (`s = 20`, `b = 96`):
each equation with the letters must hold there.
`meta.details.steps` records how many claims were checked and, for a failure, the claim and
its expected value.

With no gold answer, this and a majority vote are what keep a self-generated trace: an
answer that the samples agree on, reached through steps that are all true.
"""

from __future__ import annotations

import re
from fractions import Fraction

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.verify.algebra import at_solutions, solved_values
from reasonfactory.generators.verify.chains import find_equations
from reasonfactory.generators.verify.exact import plain_number
from reasonfactory.generators.verify.steps import check_claims, fixed_errors, prose_of


class StepsOptions(StrictModel):
    """`steps` filter options."""

    min_claims: int = Field(1, ge=0, description="least number of checkable claims")
    allow_fixed: bool = Field(
        False,
        description="a false step passes when a later step makes a true claim with the same "
        "left side (a journey trace's detour: error, feedback, correction)",
    )
    answer_in_steps: bool = Field(
        False,
        description="a numeric final answer must be the result of one of the thought's "
        "equations (`60%` counts as 60, `$0.25` as 25 cents, a result rounded where the thought "
        "says it rounds); for GSM8K-style text: on GSM8K's test solutions (its development "
        "set) it rejects 0.6% of the right answers and 98.6% of answers off by one, but 69.5% "
        "of MATH-500's right answers (bench/bench_verifiers.py)",
    )


def steps_filter(traces: pl.DataFrame, options: StepsOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `detail` {claims, claim, expected}.

    >>> steps_filter(pl.DataFrame({"thought": ["Step 1: 2 + 3 = 5.", "Step 1: 2 + 3 = 6.",
    ...     "First add the two.\\n\\nSo 2 + 3 = 5.", "I am not sure."]}))["reason"].to_list()
    [None, 'false_step', None, 'no_claims']
    """
    opts = StepsOptions.model_validate(options or {})
    ok, reason, detail = [], [], []
    answers = (
        traces["predicted"].to_list() if "predicted" in traces.columns else [None] * traces.height
    )
    for thought, answer in zip(traces["thought"].to_list(), answers, strict=True):
        verdict, info, results = _judge(thought or "", opts.min_claims, opts.allow_fixed)
        rounds = bool(_ROUNDS.search(thought or ""))
        if verdict is None and opts.answer_in_steps and not _derived(results, answer, rounds):
            verdict = "answer_not_in_steps"
            info = {**info, "claim": None, "expected": str(answer)}
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


def _derived(results: set[Fraction], answer: str | None, rounds: bool = False) -> bool:
    """Whether `answer` is one of a thought's equation `results` (True when the answer is not
    a plain number: other answers are for the answer check to judge).

    >>> _derived({Fraction(5)}, "55"), _derived({Fraction(5)}, "5"), _derived(set(), "a+b")
    (False, True, True)
    """
    value = plain_number(answer)
    if value is None or value in results:
        return True
    # A whole answer that is a result with a fraction part rounded to the nearest whole, in a
    # thought that says it rounds (`rounds`): `54 / 8 = 6.75` packs, "round 6.75 up" -> 7;
    # `= 33.333...%, which rounds down to 33%`. Nearest only, and only where the thought says
    # so: otherwise an answer off by one that rounds another result (`$3.75` -> 4) passed.
    return (
        rounds
        and value.denominator == 1
        and any(r.denominator != 1 and abs(value - r) <= Fraction(1, 2) for r in results)
    )


def _results(claims, text: str = "") -> set[Fraction]:
    """The values a step's equations result in; `60%` counts as 3/5 and as 60, and a dollar
    amount with cents (`$0.25` in `text`) as dollars and as cents (25).

    >>> sorted(_results(find_equations("12/20 * 100% = 60%")))
    [Fraction(3, 5), Fraction(60, 1)]
    >>> text = "each razor costs $2.00/8 = $0.25 each"
    >>> sorted(_results(find_equations(text), text))
    [Fraction(1, 4), Fraction(25, 1)]
    """
    out = set()
    for claim in claims:
        v = claim.rhs_value
        if v is not None:
            out.add(v)
            if claim.rhs.rstrip().endswith("%"):
                out.add(v * 100)  # `60%` is 3/5 to the parser and 60 as an answer
            if _CENTS.fullmatch(claim.rhs) and text[: claim.right.start].rstrip().endswith("$"):
                out.add(v * 100)  # `$0.10` a wash, asked in cents: 10
    return out


_CENTS = re.compile(r"\d*\.\d\d")
_ROUNDS = re.compile(r"\b(?:round(?:s|ed|ing)?|nearest)\b", re.I)


def _judge(
    thought: str, min_claims: int, allow_fixed: bool = False
) -> tuple[str | None, dict, set[Fraction]]:
    """(verdict, detail, the values the thought's equations result in)."""
    claims = 0
    results: set[Fraction] = set()
    fixed = allow_fixed and fixed_errors(thought)
    corrected = bool(fixed) and fixed[0] == fixed[1]  # every false step fixed later
    solved = solved_values(thought)  # algebra is checked at the values the thought states
    shown = tuple(f"({value})" for value in solved.values())
    for step in thought.split("\n\n"):
        prose = prose_of(step)
        at = solved and at_solutions(prose, solved)
        # read once: checked, counted, results kept
        found = find_equations(at) if at else find_equations(prose)
        results |= _results(found, at or prose)
        check = check_claims(found, shown if at else None)
        if check.ok is False and corrected:
            claims += len(found)  # a false step the trace fixes later
            continue
        if check.ok is None:
            continue  # nothing checkable in this paragraph (prose): not false, no claim
        if not check.ok:
            return (
                "false_step",
                {"claims": claims, "claim": check.claim, "expected": check.expected},
                results,
            )
        claims += len(found)
    if claims < min_claims:
        return "no_claims", {"claims": claims, "claim": None, "expected": None}, results
    return None, {"claims": claims, "claim": None, "expected": None}, results
