"""Which answer check a problem needs, when math-verify equality with the gold is not it.

Most problems are checked by comparing the final answer with the gold answer
(`filters.answer`, math-verify). Some are not: a Countdown answer is right when it is an
expression over the given numbers that reaches the target, and many expressions are.
Such problems get a `checker` working column on their traces, a short spec derived from
the problem text (`countdown:12,45,3,7`); the answer filter hands those rows to `check`.

`attach_checkers` adds the column to any generator's traces (the flow calls it), so every
method gets the right check without knowing about it. Pure functions; no I/O.
"""

from __future__ import annotations

import polars as pl

from generators.problems.countdown import check_countdown, parse_countdown


def checker_for(question: str | None) -> str | None:
    """The checker spec a problem needs, or None for the ordinary gold comparison.

    >>> from generators.problems.countdown import countdown_question
    >>> checker_for(countdown_question([12, 45, 3, 7], 24))
    'countdown:12,45,3,7'
    >>> checker_for("Compute 2 + 3.") is None
    True
    """
    found = parse_countdown(question or "")
    if found is None:
        return None
    return "countdown:" + ",".join(str(n) for n in found[0])


def check(checker: str, gold: str | None, predicted: str | None) -> bool:
    """Apply a checker spec to a predicted answer (gold = the target for Countdown).

    >>> check("countdown:4,6", "24", "4 * 6")
    True
    """
    kind, _, arg = checker.partition(":")
    if kind == "countdown":
        if gold is None or not gold.strip().lstrip("-").isdigit():
            return False
        numbers = [int(n) for n in arg.split(",") if n]
        return check_countdown(numbers, int(gold), predicted)
    raise ValueError(f"unknown answer checker {checker!r}; known: countdown")


def attach_checkers(traces: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The traces with a `checker` column (null where math-verify applies); an existing
    non-null `checker` is kept."""
    if traces.height == 0 or "problem_id" not in traces.columns:
        return traces
    specs = problems.select(
        "problem_id",
        pl.col("question").map_elements(checker_for, return_dtype=pl.String).alias("_checker"),
    ).unique("problem_id", keep="first")
    if specs["_checker"].null_count() == specs.height and "checker" not in traces.columns:
        return traces.with_columns(checker=pl.lit(None, pl.String))
    out = traces.join(specs, on="problem_id", how="left", maintain_order="left")
    if "checker" in out.columns:
        out = out.with_columns(checker=pl.coalesce("checker", "_checker"))
    else:
        out = out.rename({"_checker": "checker"})
    return out.drop("_checker", strict=False)
