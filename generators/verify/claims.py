"""Arithmetic claims in step text: find `22 * 3 = 66` where it is written and judge it.

The one reader of claims in untrusted step text, used by the tree's `equations` verifier
(`generators.verify.steps`), error injection and journeys. A strict tokeniser reads the
text where it stands (positions kept): numbers (`1,200` with thousands separators,
decimals), `+ - * / ^ %`, brackets and `=`, with `×`, `÷`, `−`, `**`, `\\times`, `\\cdot`,
`\\div` and `\\frac{a}{b}` read as their operations. A run of such tokens with an `=` in it
is an equation, possibly a chain (`4 + 5 = 9 = 3 * 3`); a run touching a letter
(`3x - 3 = 9`, `x = 4`, `f(3) = 9`) is algebra and is skipped, and so is anything the small
recursive-descent parser does not accept. Each side is computed exactly from sympy
`Integer`/`Rational` numbers built by the parser, never from text (no `sympify`, no `eval`),
with caps on tokens, digits and exponents. A decimal written in a claim may be the other side
rounded or cut to its last shown place (`2/3 = 0.67` holds).

Two views of the same equations:
- `find_equations`: every `left = right` pair of every chain (what the verifier checks);
- `find_claims`: the pairs that compute a number, a calculation on the left and one number
  on the right (`22 * 3 = 66`, not `9 = 3 * 3`), which error injection can rewrite.

Not here: the verdict records of a step (`steps.py`), the rewriting parser with source spans
of a left side (`arith.py`: the one arithmetic parser, which this module reads claims with),
changing claims (`methods/journey/inject.py`).

Long on purpose: the tokeniser, the chain splitter and the two views share one set of token
rules and caps; split apart they would have to be kept in step by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from reasonfactory.generators.verify.arith import Node, format_value, parse_arith
from sympy import Integer, Rational

MAX_TOKENS = 64  # per side of a claim
MAX_DIGITS = 40  # per number
MAX_EXPONENT = 64
MAX_EQUATIONS = 32  # per text


class _UndefinedValue:
    """The value of a well-formed expression that divides by zero."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _UndefinedValue()


@dataclass(frozen=True)
class Side:
    """One side of an equation: as written at `text[start:end]`, normalised, and its value."""

    written: str  # `1.5 \\times 4`
    shown: str  # `1.5 * 4`
    value: Rational | _UndefinedValue
    places: int | None  # decimal places when the side is one decimal literal (`-2.33`)
    number: bool  # one number as a result is written (`66`, `(-4)`, `5/2`, `1,550`)
    literal: bool  # one number literal, no operation at all (`66`, `(-4)`; not `5/2`)
    start: int
    end: int


@dataclass(frozen=True)
class Claim:
    """`left = right` found at `text[start:end]` (one link of a chain `a = b = c`)."""

    left: Side
    right: Side

    @property
    def lhs(self) -> str:
        return self.left.written

    @property
    def rhs(self) -> str:
        return self.right.written

    @property
    def start(self) -> int:
        return self.left.start

    @property
    def end(self) -> int:
        return self.right.end

    @property
    def text(self) -> str:
        """As written: `1.5 \\times 4 = 6`."""
        return f"{self.lhs} = {self.rhs}"

    @property
    def shown(self) -> str:
        """Normalised: `1.5 * 4 = 6`."""
        return f"{self.left.shown} = {self.right.shown}"

    @property
    def rhs_value(self) -> Fraction | None:
        return _fraction(self.right.value)

    @property
    def decimal(self) -> bool:
        return "." in self.lhs or "." in self.rhs

    @cached_property
    def node(self) -> Node | None:
        """The left side as an `arith` tree with spans into `lhs` (None if arith cannot read
        it, e.g. `20% * 50`): what error injection rewrites."""
        return parse_arith(self.lhs)


# -- tokenising ------------------------------------------------------------------------------

CODE_BLOCK = re.compile(r"```[A-Za-z0-9_+-]*\n?.*?(?:```|$)", re.S)
_TOKEN = re.compile(
    r"(?P<frac>\\[dt]?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\})"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+\.\d+|\d+|\.\d+)"
    r"|(?P<op>\*\*|[-+*/^×·∗÷−–]|\\(?:times|cdot|ast|div)(?![A-Za-z]))"
    r"|(?P<pct>%)|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)"
    r"|(?P<space>\s+|\\(?:left|right)(?![A-Za-z])|\\[,;:! ]|\\[()\[\]])"
    r"|(?P<word>[A-Za-z_\\][A-Za-z_0-9]*)|(?P<other>.)",
    re.S,
)
_OPS = {"**": "^", "×": "*", "·": "*", "∗": "*", "÷": "/", "−": "-", "–": "-"}
_OPS |= {"\\times": "*", "\\cdot": "*", "\\ast": "*", "\\div": "/"}
_MATH = {"num", "frac", "op", "pct", "lp", "rp", "eq", "space"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    norm: str  # the token as plain arithmetic: `\\times` -> `*`, `\\frac{1}{2}` -> `(1/2)`
    start: int
    end: int


def _tokens(text: str) -> list[_Tok]:
    # Code blocks are blanked with spaces of the same length: claims are made in words and
    # positions must stay those of `text`.
    masked = CODE_BLOCK.sub(lambda m: " " * len(m.group()), text)
    out = []
    for m in _TOKEN.finditer(masked):
        kind, tok = m.lastgroup, m.group()
        if kind == "op":
            tok = _OPS.get(tok, tok)
        elif kind == "frac":
            tok = "({}/{})".format(*re.findall(r"\d+", tok))
        elif kind == "space":
            tok = " "
        out.append(_Tok(kind, tok, m.start(), m.end()))
    return out


def find_equations(text: str) -> list[Claim]:
    """Every numeric `left = right` a text writes, chains split into their links.

    >>> [c.shown for c in find_equations("So x = 12 / 3 = 4, then 3x - 3 = 9 and 4 = 2 × 2.")]
    ['12 / 3 = 4', '4 = 2 * 2']
    """
    tokens = _tokens(text)
    out: list[Claim] = []
    i, chains = 0, 0
    while i < len(tokens) and chains < MAX_EQUATIONS:
        if tokens[i].kind not in _MATH:
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j].kind in _MATH:
            j += 1
        sides = _chain(text, tokens[i:j], tokens[i - 1] if i else None, tokens[j : j + 1])
        if sides is not None:
            chains += 1
            out.extend(Claim(a, b) for a, b in zip(sides, sides[1:], strict=False))
        i = j
    return out


def find_claims(text: str) -> list[Claim]:
    """The calculations a text writes: a computed left side, one number on the right.

    >>> [c.text for c in find_claims("Collect: 5 - 2 = 3, so 3x + 4 = 9. Then 12 / 3 = 4.")]
    ['5 - 2 = 3', '12 / 3 = 4']
    >>> [c.text for c in find_claims("She pays 1,200 + 350 = 1,550 and 9 = 3 * 3.")]
    ['1,200 + 350 = 1,550']
    """
    return [c for c in find_equations(text) if not c.left.literal and c.right.number]


def _chain(text: str, run: list[_Tok], before: _Tok | None, after: list[_Tok]):
    if not any(t.kind == "eq" for t in run):
        return None
    word_before = before is not None and before.kind == "word"
    word_after = bool(after) and after[0].kind == "word"
    if (word_before and run[0].kind != "space") or (word_after and run[-1].kind != "space"):
        return None  # glued to a name: `f(3) = 9`, `x^2 = 4`, `12 = 3x`
    sides: list[list[_Tok]] = [[]]
    for tok in run:
        if tok.kind == "eq":
            sides.append([])
        elif tok.kind != "space":
            sides[-1].append(tok)
    # `x = 12 / 3 = 4`: the variable's side lies outside the run; the numeric chain remains.
    if word_before and not sides[0]:
        sides = sides[1:]
    if word_after and not sides[-1]:
        sides = sides[:-1]
    if len(sides) < 2 or any(not side for side in sides):
        return None
    lead = sides[0][0]
    if word_before and lead.kind == "op" and (lead.norm in "*/^" or _is_variable(before.norm)):
        return None  # the run goes on from algebra: `3x - 3 = 9`
    out = []
    for side in sides:
        if len(side) > MAX_TOKENS:
            return None
        value = _evaluate(side)
        if value is None:
            return None
        start, end = side[0].start, side[-1].end
        shown = " ".join("".join(t.norm for t in _with_spaces(run, side)).split())
        out.append(
            Side(
                text[start:end],
                shown,
                value,
                _places(side),
                _is_number(side),
                _is_number(side, fraction=False),
                start,
                end,
            )
        )
    return out


def _with_spaces(run: list[_Tok], side: list[_Tok]) -> list[_Tok]:
    """The tokens of `run` from the side's first to its last, spaces included."""
    return [t for t in run if side[0].start <= t.start and t.end <= side[-1].end]


def _is_variable(word: str) -> bool:
    return len(word) == 1 and word.isalpha()


def _places(side: list[_Tok]) -> int | None:
    """Decimal places of a side that is one (signed) decimal literal, such as `-2.33`."""
    if side[0].norm in ("-", "+"):
        side = side[1:]
    if len(side) == 1 and side[0].kind == "num" and "." in side[0].norm:
        return len(side[0].norm.split(".")[1])
    return None


def _is_number(side: list[_Tok], fraction: bool = True) -> bool:
    """One number as a result is written: `66`, `-3`, `(-4)`, `1,550`, and with `fraction`
    also `5/2`, `\\frac{3}{4}`."""
    norms = [t.norm for t in side]
    if len(norms) >= 2 and norms[0] == "(" and norms[-1] == ")":
        norms, side = norms[1:-1], side[1:-1]
    if norms and norms[0] == "-":
        norms, side = norms[1:], side[1:]
    kinds = [t.kind for t in side]
    if kinds == ["num"]:
        return True
    return fraction and (kinds == ["frac"] or (kinds == ["num", "op", "num"] and norms[1] == "/"))


# -- exact evaluation ------------------------------------------------------------------------


class _Reject(Exception):
    """Not an expression this parser accepts: the run is not treated as a claim."""


def _evaluate(side: list[_Tok]):
    """The exact value of one side (a sympy Rational, or `UNDEFINED`), None if not accepted."""
    parser = _Parser(side)
    try:
        value = parser.expression()
    except _Reject:
        return None
    return value if parser.pos == len(side) else None


class _Parser:
    """Recursive descent over the tokens of one side:

    expr := term (('+'|'-') term)*      term := unary (('*'|'/') unary)*
    unary := ('-'|'+') unary | power    power := atom ('^' unary)?
    atom := (num | frac | '(' expr ')') '%'?

    It is separate from `generators.verify.arith` on purpose: it accepts what people write in a
    result (`^`, `%`, `\\frac`) and computes in sympy numbers, where arith keeps a tree with
    spans for rewriting and is Countdown's strict rules parser.
    """

    def __init__(self, tokens: list[_Tok]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str | None, str | None]:
        if self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            return tok.kind, tok.norm
        return None, None

    def take(self) -> tuple[str | None, str | None]:
        tok = self.peek()
        self.pos += 1
        return tok

    def expression(self):
        value = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            value = _apply(op, value, self.term())
        return value

    def term(self):
        value = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            value = _apply(op, value, self.unary())
        return value

    def unary(self):
        if self.peek()[1] in ("-", "+"):
            op = self.take()[1]
            value = self.unary()
            return _apply("neg", value, None) if op == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek()[1] == "^":
            self.take()
            return _apply("^", base, self.unary())
        return base

    def atom(self):
        kind, tok = self.take()
        if kind == "num":
            value = _number(tok)
        elif kind == "frac":
            num, den = (_number(d) for d in re.findall(r"\d+", tok))
            value = _apply("/", num, den)
        elif kind == "lp":
            value = self.expression()
            if self.take()[0] != "rp":
                raise _Reject
        else:
            raise _Reject
        if self.peek()[0] == "pct":
            self.take()
            value = _apply("/", value, Integer(100))
        return value


def _number(tok: str) -> Rational:
    digits = tok.replace(",", "")
    if len(digits) > MAX_DIGITS:
        raise _Reject
    return Rational(digits) if "." in digits else Integer(digits)


def _apply(op, a, b):
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op == "neg":
        return -a
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return UNDEFINED if b == 0 else a / b
    if op == "^":
        if not b.is_integer or abs(b) > MAX_EXPONENT or (a == 0 and b < 0):
            raise _Reject
        if a != 0 and abs(int(b)) * max(len(str(abs(a.p))), len(str(a.q))) > 4 * MAX_DIGITS * 10:
            raise _Reject
        return a**b
    raise _Reject


# -- judging ---------------------------------------------------------------------------------


def same_value(a, b, places_a: int | None = None, places_b: int | None = None) -> bool:
    """Whether two sides agree; a decimal literal (`places` set) may be the other side
    rounded or cut to its last written place."""
    if a is UNDEFINED or b is UNDEFINED:
        return False
    if a == b:
        return True
    for literal, places, exact in ((a, places_a, b), (b, places_b, a)):
        if places is None:
            continue
        scale = 10**places
        if abs(literal - exact) * 2 * scale <= 1 or literal == Rational(int(exact * scale), scale):
            return True
    return False


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
    """Whether the claim is true, computed exactly in sympy numbers; None if not a claim.

    >>> claim_holds("17 * 3 = 51"), claim_holds("17 * 3 = 41"), claim_holds("x = 2")
    (True, False, None)
    >>> claim_holds("1,200 + 350 = 1,550"), claim_holds("2 / 3 = 0.67")
    (True, True)
    """
    if isinstance(claim, str):
        claim = parse_claim(claim)
        if claim is None:
            return None
    return same_value(claim.left.value, claim.right.value, claim.left.places, claim.right.places)


def _fraction(value) -> Fraction | None:
    if value is UNDEFINED:
        return None
    return Fraction(int(value.p), int(value.q))


def value_of(claim: Claim) -> Fraction | None:
    """The left side's exact value (None on division by zero)."""
    return _fraction(claim.left.value)


def restate(claim: Claim, value: Fraction) -> str:
    """The claim's left side with another right side: `17 * 3 = 51`."""
    return f"{claim.lhs} = {format_value(value, decimal=claim.decimal)}"
