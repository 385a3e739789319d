"""The one arithmetic reader: numbers and arithmetic as people write them, read exactly.

Everything that reads arithmetic reads it here: the sides of a step's claims (`chains.py`,
over the prose tokens of `claim_tokens.tokens`), a final answer written as a number
(`read_number`: `answer.py`, the `steps` filter, a code step's printed output), Countdown
answers, the left side of a claim that error injection rewrites, the sim engine's problems.

Tokens come from `claim_tokens.lex`; a recursive-descent parser (hand-written: it keeps
source spans for rewriting and refuses all else; no `eval`, no `sympify`) builds a tree
whose nodes hold their spans and exact value (`Fraction`, or `UNDEFINED` after a division
by zero), with caps on length, tokens, digits, nesting and exponents. Two sets of rules:
- `WRITTEN`, what people write in a result: `^`, `%`, `\\frac{a}{b}`, a glued bracket
  (`2(3 + 4)`), mixed numbers (`3 1/2`), a leading `+`, every number form of the lexer;
- strict (`parse_arith`): numbers, `+ - * /` (`\\times`, `÷`, ...) and round brackets only.

Not here: units and word operators (`claim_tokens.py`), finding claims (`chains.py`),
judging them (`judge.py`), what counts as the same answer (`answer.py`).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.verify.claim_tokens import Tok, lex, mixed_at

MAX_CHARS = 400  # a whole expression (`parse_arith`)
MAX_TOKENS = 120
MAX_DEPTH = 24  # nested brackets
MAX_DIGITS = 40  # per number
MAX_EXPONENT = 400  # the answer checker's old cap on `10^k`
MAX_POWER_DIGITS = 1600  # about, of a power's result
MAX_ANSWER_CHARS = 40


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


@dataclass(frozen=True)
class Rules:
    """What the parser accepts besides numbers, `+ - * /` and brackets."""

    written: bool = True  # `^`, `%`, `\\frac`, glued brackets, mixed numbers, a leading `+`
    unary_minus: bool = True
    number: re.Pattern | None = None  # what a number must look like as written (strict)


WRITTEN = Rules()
_DECIMAL = re.compile(r"[\d,]*\.(\d+)")
_STRICT_DECIMALS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_STRICT_INTEGERS = re.compile(r"\d+")
_BLANK = ("space", "skip")
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}


class _Reject(ValueError):  # not an expression these rules accept, or past a cap
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
            raise _Reject("too many digits")
        base = Fraction(f"{whole or 0}.{fixed}" if fixed else (whole or "0"))
        return base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    mantissa, _, exponent = norm.replace(",", "").lower().partition("e")
    if len(mantissa) > MAX_DIGITS or len(exponent) > 4:
        raise _Reject("too many digits")
    value = Fraction(mantissa)
    return value * _power(Fraction(10), Fraction(int(exponent))) if exponent else value


def _power(a: Fraction, b: Fraction) -> Fraction:
    digits = max(len(str(abs(a.numerator))), len(str(a.denominator)))
    if b.denominator != 1 or abs(b) > MAX_EXPONENT or (a == 0 and b < 0):
        raise _Reject("exponent")
    if a != 0 and abs(int(b)) * digits > MAX_POWER_DIGITS:
        raise _Reject("result too long")
    return a ** int(b)


def _apply(op: str, a: Value, b: Value) -> Value:
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op == "/":
        return UNDEFINED if b == 0 else a / b
    return _power(a, b) if op == "^" else _ARITHMETIC[op](a, b)


def _binop(op: str, left: Node, right: Node, op_start: int) -> BinOp:
    return BinOp(
        op, left, right, op_start, left.start, right.end, _apply(op, left.value, right.value)
    )


class _Parser:
    """Recursive descent over tokens with their blanks removed:

    expr := term (('+'|'-') term)*      term := unary (('*'|'/') unary | glued '(')*
    unary := ('-'|'+') unary | power    power := atom ('^' unary)?
    atom := (num | num num '/' num | frac group group | '(' expr ')') '%'?
    """

    def __init__(self, toks: list[Tok], text: str, rules: Rules):
        self.toks, self.text, self.rules, self.pos, self.depth = toks, text, rules, 0, 0

    def peek(self) -> Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise _Reject("unexpected end")
        self.pos += 1
        return tok

    def at(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.norm in ops

    def expression(self) -> Node:
        node = self.term()
        while self.at("+", "-"):
            op = self.take()
            node = _binop(op.norm, node, self.term(), op.start)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("*", "/") or self.glued_bracket():
            if self.at("*", "/"):
                op = self.take()
                node = _binop(op.norm, node, self.unary(), op.start)
            else:
                start = self.toks[self.pos].start
                node = _binop("*", node, self.unary(), start)
        return node

    def glued_bracket(self) -> bool:
        """`2(3 + 4)`: a bracket glued to what precedes it multiplies it."""
        tok = self.peek()
        if not self.rules.written or self.pos == 0 or tok is None or tok.kind != "lp":
            return False
        prev = self.toks[self.pos - 1]
        return prev.kind in ("num", "rp", "pct") and prev.end == tok.start

    def unary(self) -> Node:
        if (self.at("-") and self.rules.unary_minus) or (self.at("+") and self.rules.written):
            op = self.take()
            operand = self.unary()
            if op.norm == "+":
                return operand
            value = UNDEFINED if operand.value is UNDEFINED else -operand.value
            return Unary("-", operand, op.start, operand.end, value)
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.rules.written and self.at("^"):
            op = self.take()
            return _binop("^", base, self.unary(), op.start)
        return base

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            node = self.number(tok)
            if self.rules.written and mixed_at(self.toks, self.pos - 1):
                num, slash, den = self.number(self.take()), self.take(), self.number(self.take())
                node = _binop("+", node, _binop("/", num, den, slash.start), num.start)
        elif tok.kind == "fracop" and self.rules.written:
            num = self.group()
            den = self.group()
            node = BinOp(
                "/", num, den, tok.start, tok.start, den.end, _apply("/", num.value, den.value)
            )
        elif tok.kind == "lp":
            node = self.bracket(tok)
        else:
            raise _Reject(f"unexpected {tok.norm!r}")
        if self.rules.written and self.peek() is not None and self.peek().kind == "pct":
            pct = self.take()
            node = Unary("%", node, node.start, pct.end, _apply("/", node.value, Fraction(100)))
        return node

    def bracket(self, open_: Tok) -> Group:
        if not self.rules.written and self.text[open_.start] != "(":
            raise _Reject("only round brackets")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Reject("nested too deeply")
        inner = self.expression()
        close = self.take()
        if close.kind != "rp" or (not self.rules.written and self.text[close.start] != ")"):
            raise _Reject("unclosed bracket")
        self.depth -= 1
        return Group(inner, open_.start, close.end, inner.value)

    def group(self) -> Node:
        """`{12}` or a bare digit after `\\frac` (`\\frac12`)."""
        tok = self.take()
        if tok.kind == "num" and len(tok.norm) == 1:
            return self.number(tok)
        if tok.kind != "lp":
            raise _Reject("a fraction needs two groups")
        return self.bracket(tok)

    def number(self, tok: Tok) -> Num:
        if tok.kind != "num":
            raise _Reject("a number was expected")
        written = self.text[tok.start : tok.end]
        if self.rules.number is not None and not self.rules.number.fullmatch(written):
            raise _Reject(f"not a number these rules accept: {written!r}")
        decimal = decimal_places(tok.norm) is not None
        return Num(number_value(tok.norm), written, tok.start, tok.end, decimal)


def parse_tokens(toks: list[Tok], text: str, rules: Rules = WRITTEN) -> Node | None:
    """The syntax tree of all of `toks` (tokens of `text`, blanks ignored), or None.

    >>> text = "2(3 + 4) + 3 1/2 - 10%"
    >>> parse_tokens(lex(text), text).value
    Fraction(87, 5)
    """
    parser = _Parser([t for t in toks if t.kind not in _BLANK], text, rules)
    try:
        node = parser.expression()
    except ValueError:  # _Reject, or a number Fraction cannot read
        return None
    return node if parser.pos == len(parser.toks) else None


def parse_arith(text: str, *, unary_minus: bool = True, decimals: bool = True) -> Node | None:
    """The strict syntax tree of a whole expression, or None if `text` is anything else.

    `decimals=False` accepts plain integers only (no `2.5`, no `1,200`); `unary_minus=False`
    rejects `-3` written as a number (Countdown's rules).

    >>> evaluate(parse_arith("(91 - 58) \\\\times 2"))
    Fraction(66, 1)
    >>> parse_arith("__import__('os')") is None, parse_arith("2 ** 3") is None
    (True, True)
    """
    if not text or len(text) > MAX_CHARS:
        return None
    toks = [t for t in lex(text) if t.kind != "space"]
    if not toks or len(toks) > MAX_TOKENS:
        return None
    numbers = _STRICT_DECIMALS if decimals else _STRICT_INTEGERS
    return parse_tokens(toks, text, Rules(False, unary_minus, numbers))


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
