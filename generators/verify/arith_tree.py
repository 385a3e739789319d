"""The syntax tree of the one arithmetic reader: its nodes, their exact values, the caps.

Every node holds its source span and its exact value (`Fraction`, or `UNDEFINED` after a
division by zero); the parser (`arith_parser.py`) builds them with `binop` and `apply_op`,
which compute under caps on digits and exponents (`Reject` past a cap). `evaluate`,
`unwrap` and `numbers_in` read a built tree.

Not here: tokens (`claim_tokens.py`), parsing (`arith_parser.py`), reading a final answer
as one number (`exact.py`).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 40  # per number
MAX_EXPONENT = 400  # the answer checker's old cap on `10^k`
MAX_POWER_DIGITS = 1600  # about, of a power's result


class _Undefined:  # the value of a well-formed expression that divides by zero
    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()
Value = Fraction | _Undefined


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str  # as written: `1,200`, `½`, `0.\\overline{3}`
    start: int
    end: int
    decimal: bool = False  # a plain decimal (`2.5`): it may stand for a rounded value


@dataclass(frozen=True)
class Unary:
    op: str  # `-` (a minus sign) or `%` (a percent sign after its operand)
    operand: Node
    start: int
    end: int
    value: Value


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ^ (`\\frac` and a glued bracket are `/` and `*`)
    left: Node
    right: Node
    op_start: int
    start: int
    end: int
    value: Value


@dataclass(frozen=True)
class Group:
    """A bracketed expression; its span includes the brackets."""

    inner: Node
    start: int
    end: int
    value: Value


Node = Num | Unary | BinOp | Group

_DECIMAL = re.compile(r"[\d,]*\.(\d+)")
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}


class Reject(ValueError):  # not an expression these rules accept, or past a cap
    pass


def decimal_places(norm: str) -> int | None:
    """Places of a plain decimal (`norm` of a number token: `2.33` -> 2), else None."""
    m = _DECIMAL.fullmatch(norm)
    return len(m.group(1)) if m else None


def number_value(norm: str) -> Fraction:
    """The exact value of a number token (`1,200`, `3/4` from `¾`, `0.1(6)`, `6.02e23`)."""
    if "/" in norm:  # a vulgar fraction such as `¾`
        num, den = norm.split("/")
        return Fraction(int(num), int(den))
    if "(" in norm:  # a repeating decimal, `0.1(6)` for 0.1666...
        head, rep = norm.rstrip(")").split("(")
        whole, _, fixed = head.replace(",", "").partition(".")
        if len(head) + len(rep) > MAX_DIGITS:
            raise Reject("too many digits")
        base = Fraction(f"{whole or 0}.{fixed}" if fixed else (whole or "0"))
        return base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    mantissa, _, exponent = norm.replace(",", "").lower().partition("e")
    if len(mantissa) > MAX_DIGITS or len(exponent) > 4:
        raise Reject("too many digits")
    value = Fraction(mantissa)
    return value * _power(Fraction(10), Fraction(int(exponent))) if exponent else value


def _power(a: Fraction, b: Fraction) -> Fraction:
    digits = max(len(str(abs(a.numerator))), len(str(a.denominator)))
    if b.denominator != 1 or abs(b) > MAX_EXPONENT or (a == 0 and b < 0):
        raise Reject("exponent")
    if a != 0 and abs(int(b)) * digits > MAX_POWER_DIGITS:
        raise Reject("result too long")
    return a ** int(b)


def apply_op(op: str, a: Value, b: Value) -> Value:
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op == "/":
        return UNDEFINED if b == 0 else a / b
    return _power(a, b) if op == "^" else _ARITHMETIC[op](a, b)


def binop(op: str, left: Node, right: Node, op_start: int) -> BinOp:
    return BinOp(
        op, left, right, op_start, left.start, right.end, apply_op(op, left.value, right.value)
    )


def evaluate(node: Node) -> Fraction | None:
    """The exact value; None on division by zero."""
    return None if node.value is UNDEFINED else node.value


def unwrap(node: Node) -> Node:
    """The node without enclosing brackets."""
    while isinstance(node, Group):
        node = node.inner
    return node


def numbers_in(node: Node) -> list[Num]:
    """The number literals, left to right."""
    if isinstance(node, Num):
        return [node]
    if isinstance(node, Group):
        return numbers_in(node.inner)
    if isinstance(node, Unary):
        return numbers_in(node.operand)
    return numbers_in(node.left) + numbers_in(node.right)
