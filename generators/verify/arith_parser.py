"""The parser of the one arithmetic reader: tokens (`claim_tokens.lex`) to a syntax tree.

A recursive-descent parser (hand-written: it keeps source spans for rewriting and refuses
all else; no `eval`, no `sympify`) builds the nodes of `arith_tree.py`, with caps on
length, tokens and nesting. Two sets of rules:
- `WRITTEN`, what people write in a result: `^`, `%`, `\\frac{a}{b}`, a glued bracket
  (`2(3 + 4)`), mixed numbers (`3 1/2`), a leading `+`, every number form of the lexer;
- strict (`parse_arith`): numbers, `+ - * /` (`\\times`, `÷`, ...) and round brackets only.

Not here: the nodes and their values (`arith_tree.py`), reading a final answer
(`exact.py`), units and word operators (`claim_tokens.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.verify.arith_tree import (
    UNDEFINED,
    BinOp,
    Group,
    Node,
    Num,
    Reject,
    Unary,
    apply_op,
    binop,
    decimal_places,
    number_value,
)
from reasonfactory.generators.verify.claim_tokens import Tok, lex, mixed_at

MAX_CHARS = 400  # a whole expression (`parse_arith`)
MAX_TOKENS = 120
MAX_DEPTH = 24  # nested brackets


@dataclass(frozen=True)
class Rules:
    """What the parser accepts besides numbers, `+ - * /` and brackets."""

    written: bool = True  # `^`, `%`, `\\frac`, glued brackets, mixed numbers, a leading `+`
    unary_minus: bool = True
    number: re.Pattern | None = None  # what a number must look like as written (strict)


WRITTEN = Rules()
_STRICT_DECIMALS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_STRICT_INTEGERS = re.compile(r"\d+")
_BLANK = ("space", "skip")


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
            raise Reject("unexpected end")
        self.pos += 1
        return tok

    def at(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.norm in ops

    def expression(self) -> Node:
        node = self.term()
        while self.at("+", "-"):
            op = self.take()
            node = binop(op.norm, node, self.term(), op.start)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("*", "/") or self.glued_bracket():
            if self.at("*", "/"):
                op = self.take()
                right = self.tight_fraction(op) or self.unary()
                node = binop(op.norm, node, right, op.start)
            else:
                start = self.toks[self.pos].start
                node = binop("*", node, self.unary(), start)
        return node

    def glued_bracket(self) -> bool:
        """`2(3 + 4)`, `(1/4)24`: a bracket glued to what precedes it, or a number glued
        after a closing bracket, multiplies."""
        tok = self.peek()
        if not self.rules.written or self.pos == 0 or tok is None:
            return False
        prev = self.toks[self.pos - 1]
        if tok.kind == "num":
            return prev.kind == "rp" and prev.end == tok.start
        return tok.kind == "lp" and prev.kind in ("num", "rp", "pct") and prev.end == tok.start

    def tight_fraction(self, op: Tok) -> Node | None:
        """`1 1/2 / 1/2`, `12 ÷ 3/4`: after a division sign with blanks around it, a fraction
        written without blanks (`1/2`) is one operand, as people mean it; the strict rules
        and `6 / 3 / 2` read left to right."""
        toks, k = self.toks, self.pos
        if not self.rules.written or op.norm != "/" or not 2 <= k < len(toks) - 2:
            return None
        num, slash, den = toks[k : k + 3]
        spaced = toks[k - 2].end < op.start and op.end < num.start
        tight = num.end == slash.start and slash.end == den.start
        then = toks[k + 3].kind if k + 3 < len(toks) else None
        if not (spaced and tight and [num.kind, slash.norm, den.kind] == ["num", "/", "num"]):
            return None
        if then in ("pct", "op") and toks[k + 3].norm in ("%", "^"):
            return None  # `6 / 1/2%`, `6 / 1/2^2`: not a plain fraction
        self.pos += 3
        return binop("/", self.number(num), self.number(den), slash.start)

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
            return binop("^", base, self.unary(), op.start)
        return base

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            node = self.number(tok)
            if self.rules.written and mixed_at(self.toks, self.pos - 1):
                num, slash, den = self.number(self.take()), self.take(), self.number(self.take())
                node = binop("+", node, binop("/", num, den, slash.start), num.start)
        elif tok.kind == "fracop" and self.rules.written:
            num = self.group()
            den = self.group()
            node = BinOp(
                "/", num, den, tok.start, tok.start, den.end, apply_op("/", num.value, den.value)
            )
        elif tok.kind == "lp":
            node = self.bracket(tok)
        else:
            raise Reject(f"unexpected {tok.norm!r}")
        if self.rules.written and self.peek() is not None and self.peek().kind == "pct":
            pct = self.take()
            node = Unary("%", node, node.start, pct.end, apply_op("/", node.value, Fraction(100)))
        return node

    def bracket(self, open_: Tok) -> Group:
        if not self.rules.written and self.text[open_.start] != "(":
            raise Reject("only round brackets")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Reject("nested too deeply")
        inner = self.expression()
        close = self.take()
        if close.kind != "rp" or (not self.rules.written and self.text[close.start] != ")"):
            raise Reject("unclosed bracket")
        self.depth -= 1
        return Group(inner, open_.start, close.end, inner.value)

    def group(self) -> Node:
        """`{12}` or a bare digit after `\\frac` (`\\frac12`)."""
        tok = self.take()
        if tok.kind == "num" and len(tok.norm) == 1:
            return self.number(tok)
        if tok.kind != "lp":
            raise Reject("a fraction needs two groups")
        return self.bracket(tok)

    def number(self, tok: Tok) -> Num:
        if tok.kind != "num":
            raise Reject("a number was expected")
        written = self.text[tok.start : tok.end]
        if self.rules.number is not None and not self.rules.number.fullmatch(written):
            raise Reject(f"not a number these rules accept: {written!r}")
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

    >>> parse_arith("(91 - 58) \\\\times 2").value
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
