"""The forms people write answers in, read for `answer.py`: the empty set, inequalities as
intervals, and the rounding rule of an approximate decimal. Numbers themselves (thousands
grouped by thin spaces, scientific notation, repeating decimals) are read by the one
arithmetic reader, `exact.read_number`.

Pure string and number functions over untrusted text (regexes with bounded input, exact
`Fraction`s); nothing here calls math-verify or evaluates text.
"""

from __future__ import annotations

import re
from fractions import Fraction

_EMPTY = {"\\emptyset", "\\varnothing", "\\{\\}", "∅", "{}", "\\text{emptyset}", "\\o"}
_CMP = r"(<|>|\\le(?:q)?|\\ge(?:q)?|\\lt|\\gt|≤|≥)"
_BOUND = (
    r"(-?\s*(?:\d+(?:\.\d+)?|\\[dt]?frac\{[^{}]+\}\{[^{}]+\}|\\sqrt\{[^{}]+\}|\\pi)(?:\s*/\s*\d+)?)"
)
_ONE_SIDED = re.compile(rf"\s*([a-z])\s*{_CMP}\s*{_BOUND}\s*")
_ONE_SIDED_R = re.compile(rf"\s*{_BOUND}\s*{_CMP}\s*([a-z])\s*")
_TWO_SIDED = re.compile(rf"\s*{_BOUND}\s*{_CMP}\s*([a-z])\s*{_CMP}\s*{_BOUND}\s*")
_OR = re.compile(r"\\text\{\s*or\s*\}|\\quad\s*\\text\{or\}\s*\\quad|\s+or\s+|\\cup|\\lor")


def finite_decimal(value) -> bool:
    if not isinstance(value, Fraction):
        return False  # irrational
    q = value.denominator
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1


def decimal_places(answer: str) -> int:
    a = answer.strip().strip("$")
    return len(a.split(".")[1]) if "." in a else 0


def rounds_to(written: Fraction, places: int, exact) -> bool:
    """`written` is `exact` rounded (half a unit) or cut at its last written place."""
    from sympy import Rational, floor

    w = Rational(written.numerator, written.denominator)
    e = exact if not isinstance(exact, Fraction) else Rational(exact.numerator, exact.denominator)
    scale = Rational(10) ** places
    if bool(abs(w - e) * 2 * scale <= 1):
        return True
    cut = (floor(abs(e) * scale) / scale) * (1 if e >= 0 else -1)
    return bool(w == cut)


def is_empty_set(answer: str) -> bool:
    a = re.sub(r"\s+|\$|\\left|\\right", "", answer)
    return a in _EMPTY


def _less(op: str) -> bool:
    return op in ("<", "\\lt", "\\le", "\\leq", "≤")


def _strict(op: str) -> bool:
    return op in ("<", ">", "\\lt", "\\gt")


def as_interval(answer: str) -> str | None:
    """An inequality in one variable as interval notation, else None.

    >>> as_interval("2 \\\\le x < 5"), as_interval("x<1 \\\\text{ or } x>2")
    ('[2, 5)', '(-\\\\infty, 1) \\\\cup (2, \\\\infty)')
    """
    text = answer.strip().strip("$")
    if len(text) > 200 or not re.search(r"[<>≤≥]|\\[lg]e|\\[lg]t", text):
        return None
    parts = []
    for piece in _OR.split(text):
        m = _TWO_SIDED.fullmatch(piece)
        if m:
            lo, op1, _, op2, hi = m.groups()
            if not (_less(op1) and _less(op2)):
                return None
            left, right = "(" if _strict(op1) else "[", ")" if _strict(op2) else "]"
            parts.append(f"{left}{lo.strip()}, {hi.strip()}{right}")
            continue
        m, flip = _ONE_SIDED.fullmatch(piece), False
        if m is None:
            m, flip = _ONE_SIDED_R.fullmatch(piece), True
            if m is None:
                return None
            bound, op, _ = m.groups()
        else:
            _, op, bound = m.groups()
        below = _less(op) != flip  # the variable lies below the bound
        bound = bound.strip()
        if below:
            parts.append(f"(-\\infty, {bound}{')' if _strict(op) else ']'}")
        else:
            parts.append(f"{'(' if _strict(op) else '['}{bound}, \\infty)")
    return " \\cup ".join(parts) if parts else None
