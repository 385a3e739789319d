"""Which rule decides a problem's answer when equality with the gold is not it.

Most problems are checked by comparing the final answer with the gold answer (`answer.py`,
math-verify). Some are not: a Countdown answer is right when it is an expression over the
given numbers that reaches the target, and many expressions are. Such a problem carries a
checker spec on its row (`problems.meta.checker`, e.g. `countdown:12,45,3,7`, written when
the problem is loaded); `attach_checkers` copies it onto the problem's traces as the
`checker` working column, and `check` applies it. A reasoning-gym problem carries
`gym:{...}` (gym_checker.py): its family's scorer runs in the answer pool (`is_scored`). A
code problem's checker is `code`; on its traces it becomes `code:` + its tests
(`problems.meta.code`), which `code_tests` runs in the sandbox (the `answer` filter batches
them: `code_tests.verify_many`). Pure functions; no I/O, except that a code check runs the
program in the sandbox.
"""

from __future__ import annotations

import json

import polars as pl
from reasonfactory.generators.verify.countdown import check_countdown
from reasonfactory.generators.verify.gym_checker import PREFIX as GYM_PREFIX
from reasonfactory.generators.verify.gym_checker import score_gym


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
    if kind == "gym":  # in this process, no time limit: `judge_answers` uses the pool
        return score_gym(checker, gold, predicted)[0] >= 1.0
    if kind == "code":  # `predicted`: the reply (or the program) to run against the tests
        from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_code

        return verify_code(read_tests(arg), predicted, CodeOptions(extract="auto")).ok
    raise ValueError(f"unknown answer checker {checker[:40]!r}; known: countdown, gym, code")


def is_scored(checker: str | None) -> bool:
    """Whether a checker scores in [0, 1] by a family's own code (reasoning-gym), run in the
    answer pool with its limits, rather than by a rule checked in place (Countdown).

    >>> is_scored("gym:{}"), is_scored("countdown:4,6"), is_scored(None)
    (True, False, False)
    """
    return checker is not None and checker.startswith(GYM_PREFIX)


CODE = "code:"


def is_code(checker: str | None) -> bool:
    """Whether a trace's checker is a code problem's tests (`code:` + JSON)."""
    return checker is not None and checker.startswith(CODE)


def problem_checker(problem: dict) -> str | None:
    """The checker spec stored on a problem row (its `meta.checker`), or None.

    >>> problem_checker({"meta": '{"checker": "countdown:4,6"}'})
    'countdown:4,6'
    """
    meta = problem.get("meta")
    if not meta:
        return None
    return (json.loads(meta) if isinstance(meta, str) else meta).get("checker")


def attach_checkers(traces: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """The traces with a `checker` column from their problem's `meta.checker` (null where
    math-verify applies); an existing non-null `checker` is kept."""
    if traces.height == 0 or "problem_id" not in traces.columns:
        return traces
    if "meta" in problems.columns:
        named = pl.col("meta").str.json_path_match("$.checker")
        tests = pl.concat_str([pl.lit(CODE), pl.col("meta").str.json_path_match("$.code")])
        spec = pl.when(named == "code").then(tests).otherwise(named)
    else:
        spec = pl.lit(None, pl.String)
    specs = problems.select("problem_id", spec.alias("_checker")).unique("problem_id", keep="first")
    if specs["_checker"].null_count() == specs.height and "checker" not in traces.columns:
        return traces.with_columns(checker=pl.lit(None, pl.String))
    out = traces.join(specs, on="problem_id", how="left", maintain_order="left")
    if "checker" in out.columns:
        out = out.with_columns(checker=pl.coalesce("checker", "_checker"))
    else:
        out = out.rename({"_checker": "checker"})
    return out.drop("_checker", strict=False)
