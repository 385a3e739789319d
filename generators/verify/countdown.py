"""The Countdown rule: an answer is right when it is an expression that uses each given number
exactly once and evaluates to the target, read with the strict rules of the one arithmetic
reader (`exact.parse_arith`, never `eval`). Brackets and `+ - * /` (also `\\times`, `\\div`)
only; no unary minus, no other numbers.
"""

from __future__ import annotations

import re
from collections import Counter

from reasonfactory.generators.verify.exact import evaluate, numbers_in, parse_arith

_MAX_PARTS = 8  # links of a chain `a = b = c`
_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\$")


def check_countdown(
    numbers: list[int] | tuple[int, ...],
    target: int,
    answer: str | None,
    unary_minus: bool = False,  # reasoning-gym's countdown golds negate (`27*(-2 + 5)`)
) -> bool:
    """Whether `answer` uses each number exactly once and evaluates to `target`.

    Brackets and `+ - * /` (also `\\times`, `\\div`) only; no unary minus, no other numbers.
    A chain of equalities is allowed (`(91 - 58) - (54 - 52) = 33 - 2 = 31`): one of its
    parts uses the numbers by these rules and every part equals the target.

    >>> check_countdown([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52)")
    True
    >>> check_countdown([91, 58, 54, 52], 31, "91 - 58 - 2")
    False
    >>> check_countdown([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52) = 33 - 2 = 31")
    True
    >>> check_countdown([91, 58, 54, 52], 31, "91 - 58 = 33 - 2 = 31")  # 54, 52 unused
    False
    """
    if not answer:
        return False
    text = _LATEX_NOISE.sub("", answer).strip()
    parts = text.split("=")
    if len(parts) > _MAX_PARTS or any(not p.strip() for p in parts):
        return False
    nodes = [parse_arith(p, unary_minus=unary_minus, decimals=False) for p in parts]
    if any(node is None or evaluate(node) != target for node in nodes):
        return False
    want = Counter(numbers)
    return any(Counter(int(n.value) for n in numbers_in(node)) == want for node in nodes)
