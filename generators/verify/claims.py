"""Arithmetic claims in step text: find `22 * 3 = 66` where it is written and judge it.

The one reader of claims in untrusted step text, used by the tree's `equations` verifier
(`generators.verify.steps`), error injection and journeys. The tokens come from
`claim_tokens` (numbers, operators in symbols, words and LaTeX, units and currency skipped,
positions kept). A run of such tokens with an `=` or `≈` in it is an equation, possibly a
chain (`4 + 5 = 9 = 3 * 3`); a run glued to a name (`3x - 3 = 9`, `f(3) = 9`, `12 = 3x`) is
algebra and is skipped, and so is anything the small recursive-descent parser does not
accept. Each side is computed exactly from sympy `Integer`/`Rational` numbers built by the
parser, never from text (no `sympify`, no `eval`), with caps on tokens, digits and
exponents. `judge` decides a link: a decimal may be the other side rounded or cut to its
last shown place (`2/3 = 0.67`), `≈` has the tolerance of the digits written, a percent may
name the number it follows (`18 / 450 x 100 = 4%`), and a link whose operation is in words
(`3 hours = 180 minutes`) or that restarts a running total is not judged (None), never
guessed.

Two views of the same equations:
- `find_equations`: every `left = right` pair of every chain (what the verifier checks);
- `find_claims`: the pairs that compute a number, a calculation on the left and one number
  on the right (`22 * 3 = 66`, not `9 = 3 * 3`), which error injection can rewrite.

Not here: the tokens (`claim_tokens.py`), the verdict records of a step (`steps.py`), the
rewriting parser with source spans of a left side (`arith.py`), changing claims
(`methods/journey/inject.py`).

Long on purpose: the chain splitter, the exact parser and the judge share one set of caps
and side records; split apart they would have to be kept in step by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from reasonfactory.generators.verify.arith import Node, format_value, parse_arith
from reasonfactory.generators.verify.claim_tokens import MATH, Tok, tokens
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
    first: Rational | None = None  # the value of a leading number literal (`1.50` of `1.50+3`)
    first_op: bool = False  # an operation follows that leading number


@dataclass(frozen=True)
class Claim:
    """`left = right` found at `text[start:end]` (one link of a chain `a = b = c`)."""

    left: Side
    right: Side
    approx: bool = False  # written with `≈`: the right side is the left rounded
    opening: bool = True  # the first link of its chain (nothing computed before it)

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
        return f"{self.lhs} {'≈' if self.approx else '='} {self.rhs}"

    @property
    def shown(self) -> str:
        """Normalised: `1.5 * 4 = 6`."""
        return f"{self.left.shown} {'≈' if self.approx else '='} {self.right.shown}"

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


# -- chains --------------------------------------------------------------------------------


def find_equations(text: str) -> list[Claim]:
    """Every numeric `left = right` a text writes, chains split into their links.

    >>> [c.shown for c in find_equations("So x = 12 / 3 = 4, then 3x - 3 = 9 and 4 = 2 × 2.")]
    ['12 / 3 = 4', '4 = 2 * 2']
    >>> [c.shown for c in find_equations("Toulouse has 2 * 80 sheep = 160 sheep.")]
    ['2 * 80 = 160']
    """
    toks = tokens(text)
    out: list[Claim] = []
    i, chains = 0, 0
    while i < len(toks) and chains < MAX_EQUATIONS:
        if toks[i].kind not in _RUN:
            i += 1
            continue
        j = i
        while j < len(toks) and toks[j].kind in _RUN:
            j += 1
        links = _chain(text, toks[i:j], toks[i - 1] if i else None, toks[j : j + 1])
        if links is not None:
            chains += 1
            out.extend(links)
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


_RUN = MATH | {"space"}
_BLANK = ("space", "skip")


def _chain(text: str, run: list[Tok], before: Tok | None, after: list[Tok]):
    if not any(t.kind in ("eq", "approx") for t in run):
        return None
    word_before = before is not None and before.kind == "word"
    word_after = bool(after) and after[0].kind == "word"
    labelled = word_before and run[0].kind == "eq"  # `x=220+23-80=163`
    # `12 = 3x`, `= 5 -x` are algebra; `= 13 -year` ends in prose (the `-` is dropped below)
    glued_after = (
        word_after
        and run[-1].kind not in _BLANK
        and (run[-1].kind in ("num", "rp", "pct") or _is_variable(after[0].norm))
    )
    if (word_before and run[0].kind not in _BLANK and not labelled) or glued_after:
        return None  # glued to a name: `f(3) = 9`, `x^2 = 4`, `12 = 3x`
    sides: list[list[Tok]] = [[]]
    marks: list[str] = []
    for tok in run:
        if tok.kind in ("eq", "approx"):
            sides.append([])
            marks.append(tok.kind)
        elif tok.kind not in _BLANK:
            sides[-1].append(tok)
    # `x = 12 / 3 = 4`: the variable's side lies outside the run; the numeric chain remains.
    if word_before and not sides[0]:
        sides, marks = sides[1:], marks[1:]
    elif word_before and _operation_before(text, before):
        return None  # `25 classmates + his 1 teacher + 1 = 27`: begun before the words
    # `= 8 - the rest`, `= 60 (`: an operation left hanging where prose takes over
    if not (after and after[0].kind == "word" and _is_variable(after[0].norm)):
        while sides[-1] and sides[-1][-1].kind in ("op", "lp", "fracop"):
            sides[-1] = sides[-1][:-1]
    if not sides or not sides[-1]:
        sides, marks = sides[:-1], marks[:-1]
    if len(sides) < 2:
        return None
    # `= 51 4-packs`: a second number after the result starts the prose again
    last = sides[-1]
    for k in range(1, len(last)):
        if last[k - 1].kind == "num" and last[k].kind == "num" and not _mixed(last, k - 1):
            sides[-1] = last[:k]
            break
    if len(sides) < 2 or any(not side for side in sides):
        return None
    if word_before and sides[0][0].kind == "op":
        return None  # the run goes on from words: `3x - 3 = 9`, `the rest - 10 = 5`
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
                _number(side[0].norm) if side[0].kind == "num" else None,
                len(side) > 1 and side[1].kind == "op",
            )
        )
    return [
        Claim(a, b, approx=mark == "approx", opening=k == 0)
        for k, (a, b, mark) in enumerate(zip(out, out[1:], marks, strict=False))
    ]


_LOOK_BACK = re.compile(r"(?:^|\s)[-+*/×÷=]\s+(?:[^\W\d]+[\s’']*){1,3}$")


def _operation_before(text: str, before: Tok) -> bool:
    """An operation a few words before the run: the expression began in the prose."""
    return bool(_LOOK_BACK.search(text[max(0, before.start - 80) : before.end]))


def _with_spaces(run: list[Tok], side: list[Tok]) -> list[Tok]:
    """The tokens of `run` from the side's first to its last, spaces included."""
    return [
        t for t in run if side[0].start <= t.start and t.end <= side[-1].end and t.kind != "skip"
    ]


def _mixed(side: list[Tok], k: int) -> bool:
    """`3 1/2` at `side[k]`: a whole number, a space, then a fraction."""
    part = [t.kind for t in side[k : k + 4]] == ["num", "num", "op", "num"]
    return (
        part
        and side[k + 2].norm == "/"
        and side[k].norm.isdigit()
        and (side[k].end < side[k + 1].start and side[k + 1].norm.isdigit())
    )


def _is_variable(word: str) -> bool:
    return len(word) == 1 and word.isalpha()


def _places(side: list[Tok]) -> int | None:
    """Decimal places of a side that is one (signed) decimal literal, such as `-2.33`."""
    if side[0].norm in ("-", "+"):
        side = side[1:]
    kinds = [t.kind for t in side]
    if kinds in (["num"], ["num", "pct"]) and "." in side[0].norm and "(" not in side[0].norm:
        return len(side[0].norm.split(".")[1]) + 2 * (kinds[-1] == "pct")
    return None


def _is_number(side: list[Tok], fraction: bool = True) -> bool:
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
    if not fraction:
        return False
    if kinds[-1:] == ["pct"]:
        return kinds == ["num", "pct"]
    frac = ["fracop", "lp", "num", "rp", "lp", "num", "rp"]
    return kinds == frac or (kinds == ["num", "op", "num"] and norms[1] == "/")


# -- exact evaluation ------------------------------------------------------------------------


class _Reject(Exception):
    """Not an expression this parser accepts: the run is not treated as a claim."""


def _evaluate(side: list[Tok]):
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

    def __init__(self, tokens: list[Tok]):
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
        while self.peek()[1] in ("*", "/") or self.glued_bracket():
            op = self.take()[1] if self.peek()[1] in ("*", "/") else "*"
            value = _apply(op, value, self.unary())
        return value

    def glued_bracket(self) -> bool:
        """`2(3 + 4)`: a bracket glued to what precedes it multiplies it."""
        if self.pos == 0 or self.pos >= len(self.tokens) or self.tokens[self.pos].kind != "lp":
            return False
        prev = self.tokens[self.pos - 1]
        return prev.kind in ("num", "rp", "pct") and prev.end == self.tokens[self.pos].start

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
            if _mixed(self.tokens, self.pos - 1):
                whole = value
                num = _number(self.take()[1])
                self.take()
                value = whole + _apply("/", num, _number(self.take()[1]))
        elif kind == "fracop":
            num = self.group()
            value = _apply("/", num, self.group())
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

    def group(self):
        """`{12}` or a bare digit after `\\frac` (`\\frac12`)."""
        kind, tok = self.take()
        if kind == "num" and len(tok) == 1:
            return _number(tok)
        if kind != "lp":
            raise _Reject
        value = self.expression()
        if self.take()[0] != "rp":
            raise _Reject
        return value


def _number(tok: str) -> Rational:
    if "/" in tok:  # a vulgar fraction such as `¾`
        num, den = tok.split("/")
        return Rational(int(num), int(den))
    if "(" in tok:  # a repeating decimal, `0.1(6)` for 0.1666...
        head, rep = tok.rstrip(")").split("(")
        whole, _, fixed = head.partition(".")
        if len(head) + len(rep) > MAX_DIGITS:
            raise _Reject
        base = Rational(f"{whole or 0}.{fixed}" if fixed else (whole or "0"))
        return base + Rational(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
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


def _shifted(places: int | None) -> int | None:
    return None if places is None else max(places - 2, 0)


def _written_places(side: Side) -> int | None:
    """Places a `≈` result is written to: `3.14` -> 2, `33` -> 0, `1,200` -> -2."""
    if side.places is not None:
        return side.places
    if not side.literal:
        return None
    digits = re.sub(r"[^0-9]", "", side.shown)
    return -(len(digits) - len(digits.rstrip("0"))) if digits.strip("0") else 0


def _near(literal, places: int, exact) -> bool:
    """`literal` is `exact` rounded (half a unit) or cut at its last written place."""
    scale = Rational(10) ** places
    if abs(literal - exact) * 2 * scale <= 1:
        return True
    cut = Rational(int(exact * scale), 1) / scale
    return literal == cut


def judge(claim: Claim) -> bool | None:
    """Whether one link holds; None when it cannot be judged from the text alone.

    `≈` holds when one side is the other rounded or cut to the places written (`1,200`
    written with `≈` has the tolerance of its hundreds). A chain that opens with two
    different plain numbers (`3 hours = 180 minutes`, `half of 10 = 5` read as `10 = 5`)
    hides its operation in words: it is not judged.

    >>> [judge(c) for c in find_equations("10 / 3 ≈ 3.3, 1000 / 3 ≈ 300, 10 / 3 ≈ 3.5")]
    [True, True, False]
    """
    left, right = claim.left, claim.right
    if claim.approx and left.value is not UNDEFINED and right.value is not UNDEFINED:
        holds = any(
            places is not None and _near(lit.value, places, other.value)
            for lit, other in ((right, left), (left, right))
            for places in [_written_places(lit)]
        )
    else:
        holds = same_value(left.value, right.value, left.places, right.places)
    if holds or left.value is UNDEFINED or right.value is UNDEFINED:
        return holds
    if left.literal and (right.literal or claim.opening):
        return None  # `3 hours = 180 minutes`; `1.5 quarts = 4 * 1.5`: an operation in words
    # `18 / 450 x 100 = 4%`: the percent sign names what the number already is
    percent = right.shown.endswith("%") and "%" not in left.shown
    if percent and same_value(left.value, right.value * 100, None, _shifted(right.places)):
        return True
    if right.first is not None and right.first_op and same_value(left.value, right.first):
        return None  # `3/2 = 1.50 + 3.00 = 4.50`: a running total restarts the chain
    return holds


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
    return judge(claim)


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
