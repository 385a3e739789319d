"""Strict arithmetic parsing: numbers, `+ - * /`, brackets; a syntax tree with source spans.

Text from a model or a search is read as arithmetic here: the left side of a claim that
error injection rewrites (`22 * 3`, spans kept) and Countdown answers
(`(91 - 58) - (54 - 52)`). Nothing goes through Python's `eval` or sympy's `sympify`: a small
recursive-descent parser accepts only numbers (`1,200` with thousands separators), the four
operations (also written `\\times`, `\\cdot`, `\\div`, `×`, `÷`, `−`) and round brackets,
with caps on length and nesting; anything else parses to `None`. Values are exact
(`Fraction`).

Not here: finding claims in prose (`reasonfactory.generators.verify.claims`), Countdown rules
(`reasonfactory.generators.problems.countdown`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_CHARS = 400
MAX_TOKENS = 120
MAX_DEPTH = 24

_TOKEN = re.compile(
    r"\s*(?:(\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)|(\\times|\\cdot|\\div|[-+*/×÷·−()]))"
)
_OP_ALIASES = {"\\times": "*", "\\cdot": "*", "×": "*", "·": "*", "\\div": "/", "÷": "/", "−": "-"}


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Neg:
    operand: Node
    start: int
    end: int


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Node
    right: Node
    op_start: int
    start: int
    end: int


@dataclass(frozen=True)
class Group:
    """A bracketed expression; its span includes the brackets."""

    inner: Node
    start: int
    end: int


Node = Num | Neg | BinOp | Group


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num" or an operator/bracket
    text: str
    start: int
    end: int


def _tokenize(text: str, decimals: bool) -> list[_Tok] | None:
    toks, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            return None
        if m.group(1) is not None:
            if ("." in m.group(1) or "," in m.group(1)) and not decimals:
                return None
            toks.append(_Tok("num", m.group(1), m.start(1), m.end(1)))
        else:
            sym = m.group(2)
            toks.append(_Tok(_OP_ALIASES.get(sym, sym), sym, m.start(2), m.end(2)))
        pos = m.end()
        if len(toks) > MAX_TOKENS:
            return None
    return toks


class _Parser:
    def __init__(self, toks: list[_Tok], unary_minus: bool):
        self.toks, self.i, self.unary_minus, self.depth = toks, 0, unary_minus, 0

    def peek(self) -> str | None:
        return self.toks[self.i].kind if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.term()
            node = BinOp(op.kind, node, right, op.start, node.start, right.end)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.unary()
            node = BinOp(op.kind, node, right, op.start, node.start, right.end)
        return node

    def unary(self) -> Node:
        if self.peek() == "-" and self.unary_minus:
            op = self.take()
            inner = self.unary()
            return Neg(inner, op.start, inner.end)
        return self.atom()

    def atom(self) -> Node:
        kind = self.peek()
        if kind == "num":
            tok = self.take()
            return Num(Fraction(tok.text.replace(",", "")), tok.text, tok.start, tok.end)
        if kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ValueError("nested too deeply")
            open_ = self.take()
            inner = self.expr()
            if self.peek() != ")":
                raise ValueError("unclosed bracket")
            close = self.take()
            self.depth -= 1
            return Group(inner, open_.start, close.end)
        raise ValueError(f"unexpected {kind!r}")


def parse_arith(text: str, *, unary_minus: bool = True, decimals: bool = True) -> Node | None:
    """The syntax tree of an arithmetic expression, or None if `text` is anything else.

    `decimals=False` accepts plain integers only (no `2.5`, no `1,200`); `unary_minus=False`
    rejects `-3` written as a number (Countdown's rules).

    >>> evaluate(parse_arith("(91 - 58) \\\\times 2"))
    Fraction(66, 1)
    >>> parse_arith("__import__('os')") is None, parse_arith("2 ** 3") is None
    (True, True)
    """
    if not text or len(text) > MAX_CHARS:
        return None
    toks = _tokenize(text, decimals)
    if not toks:
        return None
    parser = _Parser(toks, unary_minus)
    try:
        node = parser.expr()
    except (ValueError, IndexError):
        return None
    return node if parser.i == len(toks) else None


def evaluate(node: Node) -> Fraction | None:
    """The exact value; None on division by zero."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Group):
        return evaluate(node.inner)
    if isinstance(node, Neg):
        v = evaluate(node.operand)
        return None if v is None else -v
    a, b = evaluate(node.left), evaluate(node.right)
    if a is None or b is None:
        return None
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    return None if b == 0 else a / b


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
    if isinstance(node, Neg):
        return numbers_in(node.operand)
    return numbers_in(node.left) + numbers_in(node.right)


def has_operation(node: Node) -> bool:
    return isinstance(unwrap(node), BinOp) or (
        isinstance(unwrap(node), Neg) and has_operation(unwrap(node).operand)
    )


def format_value(value: Fraction, *, decimal: bool = False) -> str:
    """A value as a step writes it: `17`, `-3`, `53/4`, or `13.25` when `decimal` and exact.

    >>> format_value(Fraction(53, 4)), format_value(Fraction(53, 4), decimal=True)
    ('53/4', '13.25')
    """
    if value.denominator == 1:
        return str(value.numerator)
    if decimal:
        d = value.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            text = f"{float(value):.12f}".rstrip("0").rstrip(".")
            if Fraction(text) == value:
                return text
    return f"{value.numerator}/{value.denominator}"
