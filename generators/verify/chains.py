"""Arithmetic claims in step text: where `22 * 3 = 66` is written, split into its links.

The chain splitter of the claim reader, used by the tree's `equations` verifier
(`generators.verify.steps`), error injection and journeys. The tokens come from
`claim_tokens.tokens` (numbers, operators in symbols, words and LaTeX, units and currency
skipped, positions kept). A run of such tokens with an `=` or `≈` in it is an equation,
possibly a chain (`4 + 5 = 9 = 3 * 3`); a run glued to a name (`3x - 3 = 9`, `f(3) = 9`,
`12 = 3x`) is algebra and is skipped, and so is a side the one arithmetic reader
(`exact.py`, with its `WRITTEN` rules) does not accept. Each side keeps where it is written,
how it reads and its exact value.

Two views of the same equations:
- `find_equations`: every `left = right` pair of every chain (what the verifier checks);
- `find_claims`: the pairs that compute a number, a calculation on the left and one number
  on the right (`22 * 3 = 66`, not `9 = 3 * 3`), which error injection can rewrite.

Not here: the tokens (`claim_tokens.py`), parsing and computing a side (`exact.py`), whether
a link holds (`judge.py`), changing claims (`methods/journey/inject.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from reasonfactory.generators.verify.claim_tokens import MATH, Tok, mixed_at, tokens
from reasonfactory.generators.verify.exact import (
    UNDEFINED,
    Node,
    Value,
    decimal_places,
    number_value,
    parse_arith,
    parse_tokens,
)

MAX_TOKENS = 64  # per side of a claim
MAX_EQUATIONS = 32  # per text


@dataclass(frozen=True)
class Side:
    """One side of an equation: as written at `text[start:end]`, normalised, and its value."""

    written: str  # `1.5 \\times 4`
    shown: str  # `1.5 * 4`
    value: Value
    places: int | None  # decimal places when the side is one decimal literal (`-2.33`)
    number: bool  # one number as a result is written (`66`, `(-4)`, `5/2`, `1,550`)
    literal: bool  # one number literal, no operation at all (`66`, `(-4)`; not `5/2`)
    start: int
    end: int
    first: Fraction | None = None  # the value of a leading number literal (`1.50` of `1.50+3`)
    first_op: bool = False  # an operation follows that leading number


@dataclass(frozen=True)
class Claim:
    """`left = right` found at `text[start:end]` (one link of a chain `a = b = c`)."""

    left: Side
    right: Side
    approx: bool = False  # written with `≈`: the right side is the left rounded
    opening: bool = True  # the first link of its chain (nothing computed before it)
    bare: bool = False  # nothing but blanks between the two sides and the `=` (no unit word)

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
        return None if self.right.value is UNDEFINED else self.right.value

    @property
    def decimal(self) -> bool:
        return "." in self.lhs or "." in self.rhs

    @cached_property
    def node(self) -> Node | None:
        """The left side's strict tree (`exact.parse_arith`) with spans into `lhs`; None when
        it is more than numbers, `+ - * /` and brackets (`20% * 50`): what error injection
        rewrites."""
        return parse_arith(self.lhs)


# -- chains --------------------------------------------------------------------------------


def find_equations(text: str) -> list[Claim]:
    """Every numeric `left = right` a text writes, chains split into their links.

    >>> [c.shown for c in find_equations("So x = 12 / 3 = 4, then 3x - 3 = 9 and 4 = 2 × 2.")]
    ['12 / 3 = 4', '4 = 2 * 2']
    >>> [c.shown for c in find_equations("Toulouse has 2 * 80 sheep = 160 sheep.")]
    ['2 * 80 = 160']
    """
    # A list bullet (`- 328 / 4 = 82` on its own line) is no minus sign: blanked in place.
    text = _BULLET.sub(lambda m: " " * len(m.group()), text)
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
        for a, b in _lines(text, toks, i, j):
            links = _chain(text, toks[a:b], toks[a - 1] if a else None, toks[b : b + 1])
            if links is not None and chains < MAX_EQUATIONS:
                chains += 1
                out.extend(links)
        i = j
    return out


def _lines(text: str, toks: list[Tok], i: int, j: int) -> list[tuple[int, int]]:
    """The run `toks[i:j]` cut at each line break between two complete lines: one ending in
    a number (or `)`, `%`) and the next starting with one (`2 * 6 = 12` newline `12 * 41 =
    492`, as a model writes steps). A line that goes on with `=` or an operator stays whole.
    """
    cuts, last = [i], None
    for k in range(i, j):
        tok = toks[k]
        if tok.kind in _BLANK:
            continue
        ends = last is not None and last.kind in ("num", "rp", "pct")
        if ends and tok.kind in ("num", "lp", "fracop") and "\n" in text[last.end : tok.start]:
            cuts.append(k)
        last = tok
    cuts.append(j)
    return list(zip(cuts, cuts[1:], strict=False))


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
    if word_before and before.norm.lower() == "and" and _MIXED.search(text[: before.end]):
        head = [t.norm for t in run if t.kind not in _BLANK][:4]
        if len(head) == 4 and head[1] == "/" and head[3] in ("=", "≈"):
            return None  # `1 and 1/4 cups = 5/4`: a mixed number, not `1/4`
    # `12 = 3x`, `= 5 -x` are algebra; `= 13 -year` ends in prose (the `-` is dropped below)
    glued_after = (
        word_after
        and run[-1].kind not in _BLANK
        and (run[-1].kind in ("num", "rp", "pct") or _is_variable(after[0].norm))
        and not (run[-1].kind == "num" and _GLUED_UNIT.fullmatch(after[0].norm))
        and not (run[-1].kind == "eq" and _is_variable(after[0].norm))  # `250(2/5)=100=x`
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
    # A line that opens with `=` (`= 16 * 4` newline `= 60`) goes on from a previous line.
    line_start = not text[: run[0].start].rstrip(" \t").endswith(tuple("0123456789)%"))
    if not sides[0] and (word_before or line_start):
        sides, marks = sides[1:], marks[1:]
    elif word_before and _operation_before(text, before):
        return None  # `25 classmates + his 1 teacher + 1 = 27`: begun before the words
    # `= 8 - the rest`, `= 60 (`: an operation left hanging where prose takes over
    hanging = False
    if not (after and after[0].kind == "word" and _is_variable(after[0].norm)):
        while sides[-1] and sides[-1][-1].kind in ("op", "lp", "fracop"):
            sides[-1], hanging = sides[-1][:-1], True
    if not sides or not sides[-1]:
        sides, marks = sides[:-1], marks[:-1]
    if len(sides) < 2:
        return None
    # `= 51 4-packs`: a second number after the result starts the prose again
    last = sides[-1]
    for k in range(1, len(last)):
        if last[k - 1].kind == "num" and last[k].kind == "num" and not mixed_at(last, k - 1):
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
        node = parse_tokens(side, text)
        if node is None:
            return None
        start, end = side[0].start, side[-1].end
        shown = " ".join("".join(t.norm for t in _with_spaces(run, side)).split())
        out.append(
            Side(
                text[start:end],
                shown,
                node.value,
                _places(side),
                _is_number(side),
                _is_number(side, fraction=False),
                start,
                end,
                number_value(side[0].norm) if side[0].kind == "num" else None,
                len(side) > 1 and side[1].kind == "op",
            )
        )
    plain_start = not re.search(r"(?:[^\W\d_]|\\[A-Za-z]+|[-+*/^%])[\s$]*$", text[: out[0].start])
    return [
        Claim(
            a,
            b,
            approx=mark == "approx",
            opening=k == 0,
            bare=plain_start and _bare(text[a.end : b.start], b, hanging and k == len(out) - 2),
        )
        for k, (a, b, mark) in enumerate(zip(out, out[1:], marks, strict=False))
    ]


def _bare(between: str, right: Side, hanging: bool) -> bool:
    """A result written first and nothing else: only the `=` between the sides, a right side
    of numbers and operations only (no name, no percent, no operation left hanging before
    prose), and no word or operation just before the result. `35 = 12 * 5`, not `1.5 quarts
    = 4 * 1.5`, `9 = (3/4)*number of novels`, `48 = 100% + 20%` or `5\\star 1 = 9(5) + 2`."""
    if hanging or "%" in right.shown or re.search(r"[^\W\d_]", between):
        return False
    return not re.search(r"[^\W\d_]", re.sub(r"\\[A-Za-z]+", "", right.written))


# an ordinal or a unit's symbol written onto a result, `4+3=7th place`, `= 72Mb per hour`:
# not a name (`12 = 3x`, `= 4ab`, `2 + 10 = 3m` are algebra: no one-letter units); a table,
# since letters alone cannot tell
_GLUED_UNIT = re.compile(
    r"st|nd|rd|th|(?:[kmgt]b|kg|mg|lbs?|oz|[kcm]m|ft|yds?|mi|mph|kph|km/?h|[mk]l"
    r"|hrs?|mins?|secs?|[ap]m|kwh?|mpg)",
    re.I,
)

_BULLET = re.compile(r"^[ \t]*[-*•][ \t]+(?=[-(\d.])", re.M)

# `1 and 1/4` ending where the run begins: a whole number, `and`, then a bare fraction
_MIXED = re.compile(r"\d\s+and$")


_LOOK_BACK = re.compile(r"(?:^|\s)[-+*/×÷=]\s+(?:[^\W\d]+[\s’']*){1,3}$")


def _operation_before(text: str, before: Tok) -> bool:
    """An operation a few words before the run: the expression began in the prose."""
    return bool(_LOOK_BACK.search(text[max(0, before.start - 80) : before.end]))


def _with_spaces(run: list[Tok], side: list[Tok]) -> list[Tok]:
    """The tokens of `run` from the side's first to its last, spaces included."""
    return [
        t for t in run if side[0].start <= t.start and t.end <= side[-1].end and t.kind != "skip"
    ]


def _is_variable(word: str) -> bool:
    return len(word) == 1 and word.isalpha()


def _places(side: list[Tok]) -> int | None:
    """Decimal places of a side that is one (signed) decimal literal, such as `-2.33`."""
    if side[0].norm in ("-", "+"):
        side = side[1:]
    kinds = [t.kind for t in side]
    places = decimal_places(side[0].norm) if kinds in (["num"], ["num", "pct"]) else None
    return None if places is None else places + 2 * (kinds[-1] == "pct")


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


def parse_claim(text: str) -> Claim | None:
    """A whole string `lhs = rhs` as a claim (as stored in `meta`), or None.

    >>> parse_claim("17 * 3 = 41").rhs
    '41'
    """
    claims = find_claims(text)
    if len(claims) != 1 or claims[0].start != len(text) - len(text.lstrip()):
        return None
    return claims[0]


def value_of(claim: Claim) -> Fraction | None:
    """The left side's exact value (None on division by zero)."""
    return None if claim.left.value is UNDEFINED else claim.left.value


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
