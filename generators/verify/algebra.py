"""Algebra in a thought, checked at the value the thought solves for.

A correct algebraic solution (`Let x be ...`, `3 + 2x = 21`, `2x = 18`, `x = 9`) holds no
arithmetic claim the claim reader can judge, yet every equation in it can be checked: the
thought states the unknown's value (its last `x = 9`), and an equation that follows from
the problem holds at that value. `solved_value` finds that assignment (`solved_values`
each letter's, for two unknowns); `at_solution` rewrites a step with the value in place of
the letter (`3 + 2*(9) = 21`), for the claim reader (`chains.py`, `exact.py`) to judge.
Nothing is evaluated outside the one arithmetic reader; no sympy.

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
# `Z = 10 / 10 = 1`: a chain of arithmetic from the letter to one number, which ends it (the
# chain's own links are claims the reader judges)
_CHAIN = re.compile(
    rf"(?<![A-Za-z\\$])([A-Za-z])\s*=[-+*/×÷().,$\d \t]*=[ \t]*\$?[ \t]*({_NUMBER})"
    r"(?![\d,]|\.\d|[ \t]*[-+*/^(×÷%\d–−=]|[ \t]*[A-Za-z]\b|[ \t]*[A-Za-z]+[ \t]*[-+*/=])"
)
# what may stand before the letter of an assignment: not a coefficient or an operation
# (`2g = 10`, `x + 12 + x = 85` assign nothing)
_NOT_BEFORE = re.compile(r"[-+*/×÷^=(–−][ \t]*\Z|[\d.)]\Z")


def _assignments(thought: str) -> list[tuple[bool, int, str, Fraction]]:
    """(a chain, where, letter, value) of every assignment, `x = 9` or `Z = 10 / 10 = 1`,
    plain ones last and each kind in the order written."""
    out = []
    for chain, pattern in ((True, _CHAIN), (False, _ASSIGN)):
        for m in pattern.finditer(thought):
            value = plain_number(m.group(2).replace(",", ""))
            if value is not None and not _NOT_BEFORE.search(thought[: m.start()]):
                out.append((not chain, m.start(), m.group(1), value))
    return sorted(out)


def solved_value(thought: str) -> tuple[str, Fraction] | None:
    """The letter and value of the thought's last `x = NUMBER` assignment, else of its last
    chain of arithmetic from a letter to one number (`x = 48 / 3 = 16`: a named result such
    as `s = 20 - 5 = 15` after `g = 5` is no solution), or None.

    >>> solved_value("3 + 2x = 21\\n2x = 18\\nx = 9")
    ('x', Fraction(9, 1))
    >>> solved_value("x = 12 / 3 = 4"), solved_value("x + 12 + x = 85") is None
    (('x', Fraction(4, 1)), True)
    """
    found = _assignments(thought)
    return (found[-1][2], found[-1][3]) if found else None


def solved_values(thought: str) -> dict[str, Fraction]:
    """The last assignment's letter and value, and each other letter's last value where one
    equation ties it to that letter alone (`b = 5s - 4`, ... `s = 20`, then `b = 96`): a
    system in two unknowns. A value with no such tie may belong to a case the thought tried
    and left (`c = 1 and d = 4 does not work`), so it is not used.

    >>> solved_values("b = 5s - 4\\n\\n6s = 120\\n\\ns = 20\\n\\nso b = 96")
    {'s': Fraction(20, 1), 'b': Fraction(96, 1)}
    >>> solved_values("a + b = d\\n\\n2a = 2 + 8, so a = 5\\n\\n5 + b = 8, so b = 3")
    {'b': Fraction(3, 1)}
    """
    solved = solved_value(thought)
    if solved is None:
        return {}
    last = solved[0]
    values = {letter: value for _, _, letter, value in _assignments(thought)}
    return {
        letter: value
        for letter, value in values.items()
        if letter == last or _tied(thought, {letter, last})
    }


def _tied(thought: str, letters: set[str]) -> bool:
    """Whether one equation of the thought has exactly these letters as its unknowns."""
    return any(
        "=" in piece and set(_LETTER.findall(piece)) == letters for piece in _PIECES.split(thought)
    )


_LETTER = re.compile(r"(?<![A-Za-z\\])[A-Za-z](?![A-Za-z])")
_PIECES = re.compile(r"\n|[.;,:](?:\s|$)|\band\b|\$")


def at_solutions(text: str, values: dict[str, Fraction]) -> str | None:
    """`text` at every letter's value (`at_solution` in turn), or None when no letter of
    `values` stands in its equations.

    >>> at_solutions("s + b = 116", {"s": Fraction(20), "b": Fraction(96)})
    '(20) + (96) = 116'
    """
    out = None
    for letter, value in values.items():
        out = at_solution(out or text, letter, value) or out
    return out


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
