"""Step verifiers: the arithmetic claims of a step (`equations`) and its Python (`code`).

`check_equations` finds the numeric claims a step makes (`22 * 3 = 66`, chains such as
`4 + 5 = 9 = 3 * 3`) and recomputes them exactly with sympy `Integer`/`Rational`. Step text
is untrusted model output, so nothing here hands it to `sympify` or `eval`: a strict
tokeniser accepts only numbers, `+ - * / ^ %`, parentheses and `=` (with `×`, `÷`, `−`,
`\\times`, `\\cdot`, `\\div`, `\\frac{a}{b}` normalised), a small recursive-descent parser
builds the value from sympy numbers, and sizes are capped (tokens, digits, exponents).
A run of such tokens touching a letter (`3x - 3 = 9`, `x = 4`) is algebra, not a numeric
claim, and is skipped; so is anything the parser does not accept. A decimal written in a
claim may be rounded or cut to its last shown place (`10 / 3 = 3.33` holds).

`check_code` judges a code step from its sandbox run (`generators.sandbox`): an error, a
timeout, a memory or policy violation fails it, and so does printed output that disagrees
with the result the step states in words.

Both return a `StepCheck`, the record stored in `nodes.meta.check`. Not here: running the
code (`generators.sandbox`) and rollout labels (`generators.rollout_labels`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from sympy import Integer, Rational

MAX_TOKENS = 64  # per side of a claim
MAX_DIGITS = 40  # per number
MAX_EXPONENT = 64
MAX_CLAIMS = 32  # per step


@dataclass(frozen=True)
class StepCheck:
    """One verifier's verdict on one step; `claim`/`expected` name a false equation."""

    kind: str
    ok: bool
    claim: str | None = None
    expected: str | None = None
    detail: str | None = None

    def as_meta(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Claim:
    """`sides[0] = sides[1] = ...` as written, with each side's exact value."""

    text: str
    sides: tuple[str, ...]
    values: tuple[Rational, ...]
    places: tuple[int | None, ...]  # decimal places of a side that is one decimal literal


# -- tokenising ------------------------------------------------------------------------------

_NORMALISE = [
    (re.compile(r"\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}"), r"(\1/\2)"),
    (re.compile(r"\\(?:times|cdot|ast)(?![A-Za-z])|[×·∗]"), "*"),
    (re.compile(r"\\div(?![A-Za-z])|÷"), "/"),
    (re.compile(r"[−–]"), "-"),
    (re.compile(r"\\(?:left|right)(?![A-Za-z])|\\[,;:! ]|\\[()\[\]]"), " "),
    (re.compile(r"\*\*"), "^"),
]
_TOKEN = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+\.\d+|\d+|\.\d+)"
    r"|(?P<op>[-+*/^])|(?P<pct>%)|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)"
    r"|(?P<word>[A-Za-z_\\][A-Za-z_0-9]*)|(?P<space>\s+)|(?P<other>.)",
    re.S,
)
_MATH = {"num", "op", "pct", "lp", "rp", "eq", "space"}
_CODE = re.compile(r"```[A-Za-z0-9_+-]*\n?.*?(?:```|$)", re.S)


def prose_of(text: str) -> str:
    """A step without its fenced code blocks (claims are made in words, not in code)."""
    return _CODE.sub(" ", text)


def code_of(text: str) -> str:
    """The Python in a step's fenced blocks, joined (empty when it has none).

    >>> code_of("Step 1: 2 + 3 = 5.\\n```python\\ns1 = 2 + 3\\nprint(s1)\\n```")
    's1 = 2 + 3\\nprint(s1)'
    """
    blocks = re.findall(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", text, re.S)
    return "\n".join(b.rstrip("\n") for b in blocks).strip("\n")


def find_claims(text: str) -> list[Claim]:
    """The numeric equations a step writes.

    >>> [c.text for c in find_claims("Step 2: 22 * 3 = 66, so 3x - 3 = 9 and x = 4.")]
    ['22 * 3 = 66']
    """
    for pattern, repl in _NORMALISE:
        text = pattern.sub(repl, text)
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(prose_of(text))]
    claims: list[Claim] = []
    i = 0
    while i < len(tokens) and len(claims) < MAX_CLAIMS:
        if tokens[i][0] not in _MATH:
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j][0] in _MATH:
            j += 1
        claim = _claim(tokens[i:j], before=tokens[i - 1] if i else None, after=tokens[j : j + 1])
        if claim is not None:
            claims.append(claim)
        i = j
    return claims


def _claim(run, before, after) -> Claim | None:
    if not any(kind == "eq" for kind, _ in run):
        return None
    word_before = before is not None and before[0] == "word"
    word_after = bool(after) and after[0][0] == "word"
    if (word_before and run[0][0] != "space") or (word_after and run[-1][0] != "space"):
        return None  # glued to a name: `f(3) = 9`, `x^2 = 4`, `12 = 3x`
    sides: list[list[tuple[str, str]]] = [[]]
    texts = [""]
    for kind, tok in run:
        if kind == "eq":
            sides.append([])
            texts.append("")
        else:
            texts[-1] += tok
            if kind != "space":
                sides[-1].append((kind, tok))
    # `x = 12 / 3 = 4`: the variable's side lies outside the run; the numeric chain remains.
    if word_before and not sides[0]:
        sides, texts = sides[1:], texts[1:]
    if word_after and not sides[-1]:
        sides, texts = sides[:-1], texts[:-1]
    if len(sides) < 2 or any(not side for side in sides):
        return None
    lead_kind, lead = sides[0][0]
    if word_before and lead_kind == "op" and (lead in "*/^" or _is_variable(before[1])):
        return None  # the run goes on from algebra: `3x - 3 = 9`
    values, places = [], []
    for side in sides:
        if len(side) > MAX_TOKENS:
            return None
        value = _evaluate(side)
        if value is None:
            return None
        values.append(value)
        places.append(_places(side))
    shown = tuple(" ".join(text.split()) for text in texts)
    return Claim(" = ".join(shown), shown, tuple(values), tuple(places))


def _is_variable(word: str) -> bool:
    return len(word) == 1 and word.isalpha()


def _places(side) -> int | None:
    """Decimal places of a side that is one (signed) decimal literal, such as `-2.33`."""
    if side[0][1] in ("-", "+"):
        side = side[1:]
    if len(side) == 1 and side[0][0] == "num" and "." in side[0][1]:
        return len(side[0][1].split(".")[1])
    return None


# -- exact evaluation ------------------------------------------------------------------------


class _Reject(Exception):
    """Not an expression this parser accepts: the run is not treated as a claim."""


class _UndefinedValue:
    """The value of a well-formed expression that divides by zero."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _UndefinedValue()


def _evaluate(side):
    """The exact value of one side (a sympy Rational, or `_UNDEFINED`), None if not accepted."""
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
    atom := num '%'? | '(' expr ')' '%'?
    """

    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def expression(self):
        value = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            rhs = self.term()
            value = _apply(op, value, rhs)
        return value

    def term(self):
        value = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            rhs = self.unary()
            value = _apply(op, value, rhs)
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
            exponent = self.unary()
            return _apply("^", base, exponent)
        return base

    def atom(self):
        kind, tok = self.take()
        if kind == "num":
            digits = tok.replace(",", "")
            if len(digits) > MAX_DIGITS:
                raise _Reject
            value = Rational(digits) if "." in digits else Integer(digits)
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


def _apply(op, a, b):
    if a is _UNDEFINED or b is _UNDEFINED:
        return _UNDEFINED
    if op == "neg":
        return -a
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return _UNDEFINED
        return a / b
    if op == "^":
        if not b.is_integer or abs(b) > MAX_EXPONENT or (a == 0 and b < 0):
            raise _Reject
        if a != 0 and abs(int(b)) * max(len(str(abs(a.p))), len(str(a.q))) > 4 * MAX_DIGITS * 10:
            raise _Reject
        return a**b
    raise _Reject


def _same(a, b, places_a: int | None, places_b: int | None) -> bool:
    if a is _UNDEFINED or b is _UNDEFINED:
        return False
    if a == b:
        return True
    # A decimal literal may be the other side rounded or cut to its last written place.
    for literal, places, exact in ((a, places_a, b), (b, places_b, a)):
        if places is None:
            continue
        scale = 10**places
        if abs(literal - exact) * 2 * scale <= 1 or literal == Rational(int(exact * scale), scale):
            return True
    return False


def _explain(left: str, a, right: str, b) -> str:
    if re.fullmatch(r"[-+]?[\d.,]+", right.replace(" ", "")):
        return f"{left} is {show(a)}, not {right}"
    return f"{left} is {show(a)}, but {right} is {show(b)}"


def show(value) -> str:
    """A value as a person writes it: `66`, `-3`, `53/4`."""
    if value is _UNDEFINED:
        return "undefined (division by zero)"
    return str(value)


def check_equations(text: str) -> StepCheck:
    """Recompute every numeric claim in a step; the first false one fails it.

    >>> check_equations("Step 2: 22 * 3 = 76.")
    StepCheck(kind='equations', ok=False, claim='22 * 3 = 76', expected='66', detail=None)
    >>> check_equations("Step 2: 22 * 3 = 66.").ok
    True
    """
    claims = find_claims(text)
    for claim in claims:
        for k in range(len(claim.values) - 1):
            a, b = claim.values[k], claim.values[k + 1]
            if not _same(a, b, claim.places[k], claim.places[k + 1]):
                return StepCheck(
                    "equations",
                    False,
                    claim=f"{claim.sides[k]} = {claim.sides[k + 1]}",
                    expected=show(a),
                    detail=_explain(claim.sides[k], a, claim.sides[k + 1], b),
                )
    detail = f"{len(claims)} claim(s) hold" if claims else "no numeric claim"
    return StepCheck("equations", True, detail=detail)


# -- code ------------------------------------------------------------------------------------

_PRINTED = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\d+/\d+)\s*$")


def check_code(text: str, result) -> StepCheck:
    """Judge a code step from its `sandbox.ExecutionResult`.

    Fails on an error, a timeout, a memory or policy violation, or when the last line it
    printed is a number that differs from the result the step states in words (the right
    side of its last claim).
    """
    if not result.ok:
        return StepCheck("code", False, detail=result.summary())
    claims = find_claims(text)
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    printed = _PRINTED.match(lines[-1]) if lines else None
    if claims and printed:
        stated = claims[-1]
        value = _number(printed.group(1))
        if value is not None and not _close(value, stated.values[-1], stated.places[-1]):
            return StepCheck(
                "code",
                False,
                claim=stated.text,
                expected=printed.group(1),
                detail=f"the code prints {printed.group(1)}, the step says {stated.sides[-1]}",
            )
    return StepCheck("code", True, detail=(result.stdout.strip()[-200:] or "no output"))


def _number(text: str):
    try:
        if "/" in text:
            num, den = text.split("/")
            return Rational(int(num), int(den)) if int(den) else None
        return Rational(text) if len(text) <= MAX_DIGITS else None
    except (ValueError, TypeError, ZeroDivisionError):
        return None


def _close(printed, stated, places: int | None) -> bool:
    if stated is _UNDEFINED:
        return False
    if _same(printed, stated, None, places):
        return True
    # Python prints floats: 10/3 is 3.3333333333333335.
    return abs(printed - stated) <= Rational(1, 10**9) * max(1, abs(stated))
