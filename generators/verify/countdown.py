"""The Countdown rule: an answer is right when it is an expression that uses each given number
exactly once and evaluates to the target, read by the strict parser in `arith.py` (never
`eval`). Brackets and `+ - * /` (also `\\times`, `\\div`) only; no unary minus, no other numbers.
"""

from __future__ import annotations

import re
from collections import Counter

from reasonfactory.generators.verify.arith import evaluate, numbers_in, parse_arith

_TRAILING_EQ = re.compile(r"^(.*?)=\s*\(?\s*(-?\d+)\s*\)?\s*$", re.S)
_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\$")


def check_countdown(numbers: list[int] | tuple[int, ...], target: int, answer: str | None) -> bool:
    """Whether `answer` uses each number exactly once and evaluates to `target`.

    Brackets and `+ - * /` (also `\\times`, `\\div`) only; no unary minus, no other numbers.
    A trailing `= target` is allowed.

    >>> check_countdown([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52)")
    True
    >>> check_countdown([91, 58, 54, 52], 31, "91 - 58 - 2")
    False
    """
    if not answer:
        return False
    text = _LATEX_NOISE.sub("", answer).strip()
    m = _TRAILING_EQ.match(text)
    if m:
        if int(m.group(2)) != target:
            return False
        text = m.group(1)
    node = parse_arith(text, unary_minus=False, decimals=False)
    if node is None:
        return False
    used = Counter(int(n.value) for n in numbers_in(node))
    return used == Counter(numbers) and evaluate(node) == target
