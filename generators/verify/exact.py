"""The one arithmetic reader: numbers and arithmetic as people write them, read exactly.

Everything that reads arithmetic reads it here: the sides of a step's claims (`chains.py`,
over the prose tokens of `claim_tokens.tokens`), a final answer written as a number
(`read_number`: `answer.py`, the `steps` filter, a code step's printed output), Countdown
answers, the left side of a claim that error injection rewrites, the sim engine's problems.

Three modules, this one their front: `claim_tokens.lex` makes the tokens, `arith_parser.py`
parses them (`parse_tokens` with the `WRITTEN` rules, strict `parse_arith`) into the tree
of `arith_tree.py` (nodes with spans and exact values). This module reads a whole final
answer as one number (`read_number`, `plain_number`); the parser's and the tree's public
names are importable from here too.

Not here: units and word operators (`claim_tokens.py`), finding claims (`chains.py`),
judging them (`judge.py`), what counts as the same answer (`answer.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.verify.arith_parser import (
    MAX_CHARS,
    MAX_DEPTH,
    MAX_TOKENS,
    WRITTEN,
    Rules,
    parse_arith,
    parse_tokens,
)
from reasonfactory.generators.verify.arith_tree import (
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_POWER_DIGITS,
    UNDEFINED,
    BinOp,
    Group,
    Node,
    Num,
    Unary,
    Value,
    decimal_places,
    evaluate,
    number_value,
    numbers_in,
    unwrap,
)
from reasonfactory.generators.verify.claim_tokens import lex

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_POWER_DIGITS",
    "MAX_TOKENS",
    "UNDEFINED",
    "WRITTEN",
    "BinOp",
    "Group",
    "Node",
    "Num",
    "Reading",
    "Rules",
    "Unary",
    "Value",
    "decimal_places",
    "evaluate",
    "number_value",
    "numbers_in",
    "parse_arith",
    "parse_tokens",
    "plain_number",
    "read_number",
    "unwrap",
]

MAX_ANSWER_CHARS = 40


@dataclass(frozen=True)
class Reading:
    """A final answer read as one number; not `exact` when a decimal literal (`0.5`)."""

    value: Fraction
    exact: bool


def read_number(text: str | None) -> Reading | None:
    """A whole answer written as one number, else None (then it is for math-verify): an
    integer or decimal (`1,000`, `1\\,000`, `-0.5`), a fraction of integers (`3/4`,
    `-\\frac{3}{4}`), a repeating decimal (`0.\\overline{3}`, `0.1(6)`, `0.333...`) or
    scientific notation (`6.02 \\times 10^{23}`, `6.02e23`); `$` around it is ignored.

    >>> read_number("-\\\\frac{3}{4}"), read_number("0.5"), read_number("x")
    (Reading(value=Fraction(-3, 4), exact=True), Reading(value=Fraction(1, 2), exact=False), None)
    """
    if text is None:
        return None
    a = text.strip().strip("$").strip()
    if not a or len(a) > MAX_ANSWER_CHARS:
        return None
    node = parse_tokens(lex(a), a)
    if node is None or node.value is UNDEFINED:
        return None
    exact = _number_form(_unsigned(node))
    return None if exact is None else Reading(node.value, exact)


def _number_form(node: Node) -> bool | None:
    """True: an exact number form; False: a decimal literal; None: not one number."""
    if isinstance(node, Num):
        return not node.decimal
    if not isinstance(node, BinOp):
        return None
    left, right = _unsigned(unwrap(node.left)), unwrap(node.right)
    if node.op == "/":  # `3/4`, `-3/4`, `\\frac{3}{4}`
        return True if _integer(left) and _integer(right) else None
    if node.op != "*" or not isinstance(left, Num) or getattr(right, "op", None) != "^":
        return None
    base, exponent = unwrap(right.left), _unsigned(unwrap(right.right))  # `6.02 \\times 10^{23}`
    return True if isinstance(base, Num) and base.text == "10" and _integer(exponent) else None


def _unsigned(node: Node) -> Node:
    return node.operand if isinstance(node, Unary) and node.op == "-" else node


def _integer(node: Node) -> bool:
    return isinstance(node, Num) and not node.decimal and node.value.denominator == 1


def plain_number(answer: str | None) -> Fraction | None:
    """A final answer written as a plain number, a percent sign dropped (`60%` is 60), else
    None: what a step's result can be compared with.

    >>> plain_number("60\\\\%"), plain_number("1,500"), plain_number("x + 1")
    (Fraction(60, 1), Fraction(1500, 1), None)
    """
    reading = read_number(answer.replace("\\%", "").replace("%", "")) if answer else None
    return reading.value if reading else None
