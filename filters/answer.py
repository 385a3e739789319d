"""Answer check: math-verify against the gold answer, three outcomes.

`correct`, `wrong`, or `gold_unparseable` (the gold itself cannot be read as math, so the
trace says nothing about the model). Each distinct gold is parsed once per call.

math-verify guards its parsing with `signal.alarm`, which only works on the main thread;
off the main thread (Prefect runs `.submit()`/`.map()` tasks in threads) its own timeouts are
turned off, so a check never raises for being in a thread.
# TODO(filters issue): a killable process pool with a per-call wall-clock timeout.
"""

from __future__ import annotations

import threading
from enum import StrEnum

import polars as pl
from math_verify import parse, verify

from generators.checkers import check


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    GOLD_UNPARSEABLE = "gold_unparseable"


def _timeouts() -> dict:
    if threading.current_thread() is threading.main_thread():
        return {}
    return {"parsing_timeout": None}


def parse_answer(answer: str):
    """math-verify's parse of a bare answer (wrapped as a boxed expression)."""
    return parse(f"\\boxed{{{answer}}}", **_timeouts())


def check_answer(gold: str, predicted: str | None, *, parsed_gold=None) -> Outcome:
    """Compare a predicted final answer with the gold one.

    >>> check_answer("\\\\frac{1}{2}", "0.5")
    <Outcome.CORRECT: 'correct'>
    >>> check_answer("3", "4")
    <Outcome.WRONG: 'wrong'>
    """
    gold_parsed = parsed_gold if parsed_gold is not None else parse_answer(gold)
    if not gold_parsed:
        return Outcome.GOLD_UNPARSEABLE
    if predicted is None or not predicted.strip():
        return Outcome.WRONG
    pred_parsed = parse_answer(predicted)
    if not pred_parsed:
        return Outcome.WRONG
    timeout = (
        {} if threading.current_thread() is threading.main_thread() else {"timeout_seconds": None}
    )
    return Outcome.CORRECT if verify(gold_parsed, pred_parsed, **timeout) else Outcome.WRONG


def answer_filter(traces: pl.DataFrame, options=None) -> pl.DataFrame:
    """Verdicts `ok`, `reason`, `correct` for each trace (reads `gold`, `predicted`)."""
    golds: dict[str, list] = {}
    ok, reason, correct = [], [], []
    # Problems whose answers are not checked by equality (Countdown) carry a `checker`.
    checkers = traces["checker"] if "checker" in traces.columns else [None] * traces.height
    for gold, pred, source, checker in zip(
        traces["gold"], traces["predicted"], traces["gold_source"], checkers, strict=True
    ):
        if gold is None:
            ok.append(False)
            reason.append("no_consensus" if source == "none" else "no_gold")
            correct.append(None)
            continue
        if checker is not None:
            right = check(checker, gold, pred)
            ok.append(right)
            reason.append(None if right else "wrong_answer")
            correct.append(right)
            continue
        if gold not in golds:
            golds[gold] = parse_answer(gold)
        outcome = check_answer(gold, pred, parsed_gold=golds[gold])
        ok.append(outcome is Outcome.CORRECT)
        reason.append(None if outcome is Outcome.CORRECT else _REASON[outcome])
        correct.append(None if outcome is Outcome.GOLD_UNPARSEABLE else outcome is Outcome.CORRECT)
    return pl.DataFrame(
        {"ok": ok, "reason": reason, "correct": correct},
        schema={"ok": pl.Boolean, "reason": pl.String, "correct": pl.Boolean},
    )


_REASON = {Outcome.WRONG: "wrong_answer", Outcome.GOLD_UNPARSEABLE: "gold_unparseable"}
