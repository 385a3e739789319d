"""Arithmetic claims inside prose: find `17 * 3 = 51` in a step and say whether it holds.

A claim is an arithmetic expression (at least one operation) followed by `=` and a number:
`Step 2: 22 * 3 = 66.`, `Move the constant to the right: 9 - (-4) = 13, so 3x = 13.` Text
around it (`so 3x = 13`, `x = 4`) is not a claim: a side with letters in it is not
arithmetic. Truth is decided by sympy on an expression built from the parsed numbers
(`generators.arith`), never by evaluating text.

Not here: changing claims (`generators.error_injection`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from generators.arith import Node, evaluate, format_value, has_operation, parse_arith, to_sympy

_LHS_CHARS = frozenset("0123456789.+-*/×÷·−() \t")
_LATEX_OPS = ("\\times", "\\cdot", "\\div")
_RHS = re.compile(r"[ \t]*(\(?(-?\d+(?:\.\d+)?(?:/\d+)?)\)?)")
_CHAINED = re.compile(r"[ \t]*(?:[-+*/×÷·(\d]|\\times|\\cdot|\\div)")
_STARTS = re.compile(r"(?<![\d.])[\d(\-−]")
LOOKBACK = 300


@dataclass(frozen=True)
class Claim:
    """`lhs = rhs` found at `text[start:end]`."""

    lhs: str
    rhs: str
    start: int
    end: int
    node: Node

    @property
    def text(self) -> str:
        return f"{self.lhs} = {self.rhs}"

    @property
    def rhs_value(self) -> Fraction:
        return Fraction(self.rhs.strip("()"))

    @property
    def decimal(self) -> bool:
        return "." in self.lhs or "." in self.rhs


def find_claims(text: str) -> list[Claim]:
    """Every arithmetic claim in `text`, in order.

    >>> [c.text for c in find_claims("Collect: 5 - 2 = 3, so 3x + 4 = 9. Then 12 / 3 = 4.")]
    ['5 - 2 = 3', '12 / 3 = 4']
    """
    out = []
    for m in re.finditer(r"(?<![=<>!])=(?!=)", text):
        eq = m.start()
        rhs = _RHS.match(text, eq + 1)
        if not rhs or _CHAINED.match(text, rhs.end()):
            continue
        offset = _arithmetic_run_start(text, eq)
        if offset == eq:
            continue
        found = _longest_expression(text[offset:eq])
        if found is None:
            continue
        rel, lhs, node = found
        out.append(Claim(lhs, rhs.group(1), offset + rel, rhs.end(1), node))
    return out


def _arithmetic_run_start(text: str, end: int) -> int:
    """Where the run of arithmetic characters ending at `end` starts (a linear scan back)."""
    i, lo = end, max(0, end - LOOKBACK)
    while i > lo:
        if text[i - 1] in _LHS_CHARS:
            i -= 1
            continue
        op = next((op for op in _LATEX_OPS if text.endswith(op, lo, i)), None)
        if op is None:
            break
        i -= len(op)
    return i


def _longest_expression(candidate: str) -> tuple[int, str, Node] | None:
    """The longest suffix of `candidate` that is an expression with an operation in it."""
    for m in _STARTS.finditer(candidate):
        piece = candidate[m.start() :].rstrip()
        node = parse_arith(piece)
        if node is not None and has_operation(node):
            return m.start(), piece, node
    return None


def parse_claim(text: str) -> Claim | None:
    """A whole string `lhs = rhs` as a claim (as stored in `meta`), or None.

    >>> parse_claim("17 * 3 = 41").rhs
    '41'
    """
    claims = find_claims(text)
    if len(claims) != 1 or claims[0].start != len(text) - len(text.lstrip()):
        return None
    return claims[0]


def claim_holds(claim: Claim | str) -> bool | None:
    """Whether the claim is true, decided by sympy; None if `claim` is not a claim.

    >>> claim_holds("17 * 3 = 51"), claim_holds("17 * 3 = 41"), claim_holds("x = 2")
    (True, False, None)
    """
    import sympy

    if isinstance(claim, str):
        claim = parse_claim(claim)
        if claim is None:
            return None
    value = claim.rhs_value
    return bool(sympy.Eq(to_sympy(claim.node), sympy.Rational(value.numerator, value.denominator)))


def value_of(claim: Claim) -> Fraction | None:
    """The left side's exact value (None on division by zero)."""
    return evaluate(claim.node)


def restate(claim: Claim, value: Fraction) -> str:
    """The claim's left side with another right side: `17 * 3 = 51`."""
    return f"{claim.lhs} = {format_value(value, decimal=claim.decimal)}"
