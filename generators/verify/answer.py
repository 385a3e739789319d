"""Is a predicted final answer the gold one? One (gold, predicted) pair, in this process.

Outcomes: `correct`, `wrong`, `gold_unparseable` (the gold itself cannot be read as math,
so the trace says nothing about the model), and two that mean "no verdict": `timeout`
(the check ran past its wall-clock limit) and `error` (it crashed or blew its memory);
those two come from `answer_pool`, which runs many checks in killable worker processes.

Plain numbers and fractions are compared exactly; anything else goes through math-verify
(`parse` -> `verify`), whose `signal.alarm` timeouts work only on a main thread: off the
main thread they are turned off here and the caller times out (`answer_pool` does).

Known false positives of math-verify 0.9.0 that a guard here turns into `wrong` (Math-Verify
issue #14): tiny values compared by absolute rounding (`1/2004!` vs `1/2006!`,
`1/2^99` vs `1/2^98`), a `\\pm` answer against one of its signs (`\\pm 2021` vs `2021`,
fixed upstream but guarded), and sequences with `\\ldots`, which it parses to one number
(they are compared as written, normalised). And one false negative: a dropped percent sign
on a decimal (`12.5\\%` vs `12.5`; math-verify forgives it on integers only).
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum
from fractions import Fraction

from math_verify import parse, verify
from reasonfactory.generators.verify.answers import answer_key


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    GOLD_UNPARSEABLE = "gold_unparseable"
    TIMEOUT = "timeout"
    ERROR = "error"


def _timeouts() -> dict:
    # math-verify's own signal.alarm timeouts only work on a main thread; elsewhere they
    # are turned off and the caller (the pool) is the one that times out.
    if threading.current_thread() is threading.main_thread():
        return {}
    return {"parsing_timeout": None}


def parse_answer(answer: str, **timeouts):
    """math-verify's parse of a bare answer (wrapped as a boxed expression)."""
    return parse(f"\\boxed{{{answer}}}", **(timeouts or _timeouts()))


def check_answer(
    gold: str, predicted: str | None, *, parsed_gold=None, golds: dict | None = None, **timeouts
) -> Outcome:
    """Compare a predicted final answer with the gold one (in this process, no time limit
    of its own off the main thread: use `check_answers` for untrusted text at scale).

    `golds` caches parsed golds across calls (gold text -> parse); a plain number or
    fraction on both sides is compared exactly without parsing (math-verify's LaTeX parser
    costs ~5 ms a call).

    >>> check_answer("\\\\frac{1}{2}", "0.5")
    <Outcome.CORRECT: 'correct'>
    >>> check_answer("3", "4")
    <Outcome.WRONG: 'wrong'>
    """
    timeouts = timeouts or _timeouts()
    golds = {} if golds is None else golds
    if parsed_gold is not None:
        golds[gold] = parsed_gold

    def gold_parse():
        if gold not in golds:
            golds[gold] = parse_answer(gold, **timeouts)
        return golds[gold]

    g = _literal(gold)
    if g is None and not gold_parse():
        return Outcome.GOLD_UNPARSEABLE
    if predicted is None or not predicted.strip():
        return Outcome.WRONG
    if predicted.strip() == gold.strip():
        return Outcome.CORRECT
    p = _literal(predicted)
    if g is not None and p is not None:
        if g[0] == p[0]:
            return Outcome.CORRECT
        if g[1] and p[1]:  # two different exact rationals are different numbers
            return Outcome.WRONG
    if any(e in gold or e in predicted for e in _ELLIPSIS):
        # Sequences with dots parse to junk ("1, 2, \ldots, n" -> 2): only the same written
        # sequence counts.
        return Outcome.CORRECT if answer_key(gold) == answer_key(predicted) else Outcome.WRONG
    gold_parsed = gold_parse()
    pred_parsed = parse_answer(predicted, **timeouts)
    if not pred_parsed:
        return Outcome.WRONG
    percent = "%" in gold or "%" in predicted
    if not percent and _apart(gold_parsed, pred_parsed):
        return Outcome.WRONG  # two different numbers: skip math-verify's slow simplify
    verify_timeout = {"timeout_seconds": None} if "parsing_timeout" in timeouts else {}
    if not verify(gold_parsed, pred_parsed, **verify_timeout):
        if ("%" in gold) == ("%" in predicted):
            return Outcome.WRONG
        # math-verify forgives a dropped percent sign on integers only (50\% vs 50, not
        # 12.5\% vs 12.5): compare the numbers without it.
        bare = [parse_answer(_strip_percent(x), **timeouts) for x in (gold, predicted)]
        if not all(bare) or not verify(*bare, **verify_timeout):
            return Outcome.WRONG
        return Outcome.CORRECT
    return Outcome.CORRECT if _guard(gold, predicted, gold_parsed, pred_parsed) else Outcome.WRONG


_INT = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}|(-?\d+)/(\d+)")


def _literal(answer: str | None) -> tuple[Fraction, bool] | None:
    """A plain integer, decimal or integer fraction as (value, exact), else None.

    >>> _literal("-\\\\frac{3}{4}"), _literal("0.5"), _literal("x")
    ((Fraction(-3, 4), True), (Fraction(1, 2), False), None)
    """
    if answer is None:
        return None
    a = answer.strip().strip("$").strip()
    if len(a) > 40:
        return None
    if _INT.fullmatch(a):
        return Fraction(int(a)), True
    if _DECIMAL.fullmatch(a):
        return Fraction(a), False
    m = _FRAC.fullmatch(a)
    if m:
        sign, num, den = (m[1], m[2], m[3]) if m[2] else ("", m[4], m[5])
        if int(den) == 0:
            return None
        return Fraction(int(sign + num), int(den)), True
    return None


def _apart(gold_parsed, pred_parsed) -> bool:
    """Both sides are real numbers and they differ (relatively, beyond 1e-6)."""
    g, p = _number(_first_expr(gold_parsed)), _number(_first_expr(pred_parsed))
    if g is None or p is None:
        return False
    return abs(g - p) > _REL_TOL * max(abs(g), abs(p))


def _strip_percent(answer: str) -> str:
    return answer.replace("\\%", "").replace("%", "").strip()


_ELLIPSIS = ("\\ldots", "\\cdots", "\\dots", "...")
_PM = ("\\pm", "\\mp", "±")
# math-verify rounds both sides to 6 decimals, so every value under 5e-7 equals every other;
# values that agree must also agree relatively.
_REL_TOL = 1e-6


def _guard(gold: str, predicted: str, gold_parsed, pred_parsed) -> bool:
    """Second look at a math-verify "equal": False for its known false positives."""
    if any(p in gold for p in _PM) != any(p in predicted for p in _PM):
        g, p = _first_expr(gold_parsed), _first_expr(pred_parsed)
        return _set_size(g) == _set_size(p)
    if "%" in gold or "%" in predicted:
        return True  # math-verify's percent leniency (50\% vs 50) is intended
    g, p = _number(_first_expr(gold_parsed)), _number(_first_expr(pred_parsed))
    if g is None or p is None:
        return True
    if g == p:
        return True
    return abs(g - p) <= _REL_TOL * max(abs(g), abs(p))


def _first_expr(parsed):
    return next((x for x in parsed if not isinstance(x, str)), None)


def _set_size(expr) -> int:
    from sympy import FiniteSet

    rhs = getattr(expr, "rhs", expr)  # x = \pm 2
    return len(rhs) if isinstance(rhs, FiniteSet) else 1


def _number(expr):
    """A real number's value at 30 digits (an mpmath float), or None for anything else."""
    from sympy import Basic

    if not isinstance(expr, Basic) or not getattr(expr, "is_number", False):
        return None
    try:
        value = expr.evalf(30)
        if not value.is_real or not value.is_finite:
            return None
        return value
    except Exception:  # a value sympy cannot evaluate is not a number for this guard
        return None
