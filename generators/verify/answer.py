"""Is a predicted final answer the gold one? One (gold, predicted) pair, in this process.

Outcomes: `correct`, `wrong`, `gold_unparseable` (the gold itself cannot be read as math,
so the trace says nothing about the model), and two that mean "no verdict": `timeout`
(the check ran past its wall-clock limit) and `error` (it crashed or blew its memory);
those two come from `answer_pool`, which runs many checks in killable worker processes.

Plain numbers and fractions (read by the one arithmetic reader, `exact.read_number`) are
compared exactly; anything else goes through math-verify
(`parse` -> `verify`), whose `signal.alarm` timeouts work only on a main thread: off the
main thread they are turned off here and the caller times out (`answer_pool` does).

Known false positives of math-verify 0.9.0 that a guard here turns into `wrong` (Math-Verify
issue #14): tiny values compared by absolute rounding (`1/2004!` vs `1/2006!`,
`1/2^99` vs `1/2^98`), a `\\pm` answer against one of its signs (`\\pm 2021` vs `2021`,
fixed upstream but guarded), and sequences with `\\ldots`, which it parses to one number
(they are compared as written, normalised). And one false negative: a dropped percent sign
on a decimal (`12.5\\%` vs `12.5`; math-verify forgives it on integers only).

The answer policy (each rule has rows in tests/test_answer_policy.py):
- a decimal approximation (`1.414214`, `0.333`) never equals an exact gold that has no
  finite decimal form (`\\sqrt{2}`, `\\pi`, `1/3`), whatever its size, unless the caller
  allows it (`approximate=True`; recipe: `filters: [{answer: {approximate: true}}]`); then it
  must be the gold rounded or cut to the places it writes (`1.41` and `1.414` match
  `\\sqrt{2}`, `1.42` does not);
- numbers are read in the forms people write: thousands grouped with `,`, `\\,`, `{,}` or
  `\\!` (`1\\,000`), scientific notation (`6.02 \\times 10^{23}`, `6.02e23`), repeating
  decimals (`0.\\overline{3}`, `0.1(6)`, `0.333...`);
- the empty set has one meaning (`\\emptyset`, `\\varnothing`, `\\{\\}`, `∅`);
- an inequality in one variable (`x < 3`, `2 \\le x \\le 5`, `x<1 \\text{ or } x>2`) is
  the interval it describes.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from fractions import Fraction

from reasonfactory.generators.verify.answer_forms import (
    as_interval,
    decimal_places,
    finite_decimal,
    is_empty_set,
    rounds_to,
)
from reasonfactory.generators.verify.answers import answer_key
from reasonfactory.generators.verify.exact import read_number


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


def parse(text: str, **kw):
    """math-verify's `parse`, imported at the first check: it loads sympy (1-7 s on a busy
    laptop), which a command that checks no answer, or a run before its first reply, should
    not wait for."""
    from math_verify import parse as parse_math

    return parse_math(text, **kw)


def verify(gold, predicted, **kw) -> bool:
    """math-verify's `verify`, imported at the first check (as `parse`)."""
    from math_verify import verify as verify_math

    return verify_math(gold, predicted, **kw)


def parse_answer(answer: str, **timeouts):
    """math-verify's parse of a bare answer (wrapped as a boxed expression)."""
    return parse(f"\\boxed{{{answer}}}", **(timeouts or _timeouts()))


def check_answer(
    gold: str,
    predicted: str | None,
    *,
    parsed_gold=None,
    golds: dict | None = None,
    approximate: bool = False,
    why: list[str] | None = None,
    **timeouts,
) -> Outcome:
    """Compare a predicted final answer with the gold one (in this process, no time limit
    of its own off the main thread: use `check_answers` for untrusted text at scale).

    `golds` caches parsed golds across calls (gold text -> parse); a plain number or
    fraction on both sides is compared exactly without parsing (math-verify's LaTeX parser
    costs ~5 ms a call). `approximate` lets a decimal match an exact gold it rounds (module
    docstring); `why`, when given, receives one line saying how the verdict was reached.

    >>> check_answer("\\\\frac{1}{2}", "0.5")
    <Outcome.CORRECT: 'correct'>
    >>> check_answer("3", "4")
    <Outcome.WRONG: 'wrong'>
    >>> check_answer("\\\\sqrt{2}", "1.414214")
    <Outcome.WRONG: 'wrong'>
    >>> check_answer("\\\\sqrt{2}", "1.41", approximate=True)
    <Outcome.CORRECT: 'correct'>
    """
    notes = why if why is not None else []
    outcome = _check(gold, predicted, parsed_gold, golds, approximate, notes, timeouts)
    if not notes:
        notes.append("math-verify: " + ("equal" if outcome is Outcome.CORRECT else "not equal"))
    return outcome


def _check(gold, predicted, parsed_gold, golds, approximate, why, timeouts) -> Outcome:
    timeouts = timeouts or _timeouts()
    golds = {} if golds is None else golds
    if parsed_gold is not None:
        golds[gold] = parsed_gold

    def gold_parse():
        if gold not in golds:
            golds[gold] = parse_answer(gold, **timeouts)
        return golds[gold]

    g = read_number(gold)
    if g is None and not gold_parse():
        why.append("the gold cannot be read as math")
        return Outcome.GOLD_UNPARSEABLE
    if predicted is None or not predicted.strip():
        why.append("no prediction")
        return Outcome.WRONG
    if predicted.strip() == gold.strip():
        why.append("written the same")
        return Outcome.CORRECT
    p = read_number(predicted)
    if g is not None and p is not None:
        if g.value == p.value:
            why.append(f"the same number ({g.value})")
            return Outcome.CORRECT
        if g.exact and p.exact:  # two different exact rationals are different numbers
            why.append(f"different numbers ({g.value} vs {p.value})")
            return Outcome.WRONG
    empty = [is_empty_set(x) for x in (gold, predicted)]
    if any(empty):
        why.append("the empty set on both sides" if all(empty) else "only one side is empty")
        return Outcome.CORRECT if all(empty) else Outcome.WRONG
    if p is not None and not p.exact:
        exact = g.value if g is not None and g.exact else None
        value = exact if exact is not None else _gold_value(gold, g, gold_parse)
        if value is not None and not finite_decimal(value):
            if not approximate:
                why.append(
                    "a decimal approximation of an exact gold with no finite decimal form "
                    "(allowed with answer: {approximate: true})"
                )
                return Outcome.WRONG
            near = rounds_to(p.value, decimal_places(predicted), value)
            why.append(
                f"approximate: {predicted.strip()} is "
                + ("the gold rounded or cut to the places written" if near else "not the gold")
            )
            return Outcome.CORRECT if near else Outcome.WRONG
    intervals = [as_interval(x) for x in (gold, predicted)]
    if any(intervals) and not all(intervals):
        gi, pi = (iv or x for iv, x in zip(intervals, (gold, predicted), strict=True))
        g_iv, p_iv = parse_answer(gi, **timeouts), parse_answer(pi, **timeouts)
        same = bool(g_iv and p_iv and verify(g_iv, p_iv, **_verify_timeout(timeouts)))
        why.append(f"the inequality read as an interval: {gi} vs {pi}")
        return Outcome.CORRECT if same else Outcome.WRONG
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
    verify_timeout = _verify_timeout(timeouts)
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


def _verify_timeout(timeouts: dict) -> dict:
    return {"timeout_seconds": None} if "parsing_timeout" in timeouts else {}


def _gold_value(gold: str, g, gold_parse) -> Fraction | object | None:
    """The gold as an exact number (a Fraction, or a sympy number when irrational)."""
    if g is not None:
        return g.value
    if any(x in gold for x in ("%", "\\pm", "±", ",")):
        return None
    expr = _first_expr(gold_parse())
    if _number(expr) is None:
        return None
    if getattr(expr, "is_rational", False) and expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if expr.is_rational is False:
        return expr
    # sympy cannot tell (`\\log_2 3`): a value with no short decimal form is taken as exact
    value = _number(expr)
    return None if abs(value - round(value, 12)) < 1e-25 else expr


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
