"""Algebra in a thought, checked at the value the thought solves for.

A correct algebraic solution (`Let x be ...`, `3 + 2x = 21`, `2x = 18`, `x = 9`) holds no
arithmetic claim the claim reader can judge, yet every equation in it can be checked: the
thought states the unknown's value (its last `x = 9`), and an equation that follows from
the problem holds at that value. `solved_value` finds that assignment; `at_solution`
rewrites a step with the value in place of the letter (`3 + 2*(9) = 21`), for the claim
reader (`chains.py`, `exact.py`) to judge. Nothing is evaluated outside the one arithmetic
reader; no sympy.

This checks that the steps agree with the stated solution, not that they follow from the
problem: a wrong equation whose stated solution is also wrong passes here and is for the
answer check to catch.

Not here: judging claims (`judge.py`), a trace's verdict (`filters/steps.py`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from reasonfactory.generators.verify.exact import plain_number

_NUMBER = r"-?\d+/\d+|-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+"
# `x = 9`, `X = $26.`, `h = 8,000`: one letter, `=`, one number that ends the expression
_ASSIGN = re.compile(
    rf"(?<![A-Za-z\\$])([A-Za-z])\s*=\s*\$?\s*({_NUMBER})"
    r"(?![\d,]|\.\d|[ \t]*[-+*/^(×÷%\d–−]|[ \t]*[A-Za-z]\b|[ \t]*[A-Za-z]+[ \t]*[-+*/=])"
)
# what may stand before the letter of an assignment: not a coefficient or an operation
# (`2g = 10`, `x + 12 + x = 85` assign nothing)
_NOT_BEFORE = re.compile(r"[-+*/×÷^=(–−][ \t]*\Z|[\d.)]\Z")


def solved_value(thought: str) -> tuple[str, Fraction] | None:
    """The letter and value of the thought's last `x = NUMBER` assignment, or None.

    >>> solved_value("3 + 2x = 21\\n2x = 18\\nx = 9")
    ('x', Fraction(9, 1))
    >>> solved_value("x = 12 / 3 = 4") is None, solved_value("x + 12 + x = 85") is None
    (True, True)
    """
    found = [m for m in _ASSIGN.finditer(thought) if not _NOT_BEFORE.search(thought[: m.start()])]
    if not found:
        return None
    letter, number = found[-1].group(1), found[-1].group(2)
    value = plain_number(number.replace(",", ""))
    return None if value is None else (letter, value)


def at_solution(text: str, letter: str, value: Fraction) -> str | None:
    """`text` with `letter` replaced by `(value)` in its equations (`2x` -> `2*(9)`), or None
    when the letter stands in no equation or may be the times sign (`7 x 3`).

    >>> at_solution("Janey has 3+2x books, so 3+2x=21", "x", Fraction(9))
    'Janey has 3+2*(9) books, so 3+2*(9)=21'
    >>> at_solution("Let x be her age.", "x", Fraction(9)) is None
    True
    """
    alone = rf"(?<![A-Za-z\\]){re.escape(letter)}(?![A-Za-z])"
    if "=" not in text or not re.search(alone, text):
        return None
    if letter in "xX" and re.search(rf"\d\s*{letter}\s*\d", text):
        return None  # `350 000 x 5/100`: the letter multiplies
    shown = (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )

    def put(m: re.Match) -> str:
        before = text[m.start() - 1] if m.start() else ""
        return ("*" if before.isdigit() or before == ")" else "") + f"({shown})"

    return re.sub(alone, put, text)
