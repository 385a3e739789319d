"""Tokens of arithmetic as people write it, and of the prose around it in a step.

Two passes. `lex` is the lexer of every arithmetic reading (`exact.py` parses its tokens):
numbers in the forms people write (`1,200`, `1\\,000`, `1{,}000`, `729,\\!000`, `.5`,
`6.02e23`, `½`, full-width digits, repeating decimals `0.\\overline{3}`, `0.1(6)` and
`0.333...`), operators in symbols and LaTeX (`×`, `÷`, `−`, `\\times`, `\\cdot`, `\\div`,
`**`, `^`, full-width `＋－＊／`), `\\frac`/`\\dfrac`/`\\tfrac`, brackets (`{}` too), `%`,
`=`/`≈`, and everything else as words, currency or other characters, each token with its
place in the text.

`tokens` reads step text for claims: code blocks blanked, then one pass that decides, from
the tokens around it, what an ambiguous token means where people write arithmetic:
- word operators: `x`/`X` between numbers (`7 x 1.5`, `2x3`), `times`, `multiplied by`,
  `divided by`, `plus`, `minus`, `of` after a percent or fraction (`20% of 50`), and the
  Chinese `乘以 除以 加上 减去 乘 除 加 减`; a candidate that does not stand between two
  numbers is prose;
- units and currency: `$`, `\\$`, `€`, `£`, `¥`, and up to three words after a number that
  are followed by an operator, `=`, `≈` or `)` (`20 sheep + 160 sheep = 180 sheep`,
  `$20/hour * 35 hours/week`,
  `80 GB / 2 GB/minute = 40 minutes`, `\\text{ cm}`, `5 个 + 3 个`) are skipped like spaces;
- a label before numbers (`5 * shoe size 5 = shoe size 25`) and a one-letter unit symbol
  the step names in words (`60g * 4/5 = 48 grams`) are skipped too (`claim_units.py`), and
  so is `of` and a noun phrase after a fraction (`3/4 of a skein of yarn * 364`);
- a parenthetical that opens with a word right after a number (`= 60 (minutes)`) is skipped;
- an alignment mark before `=` (`&=` in LaTeX's `align`) is a space;
- `=`, full-width `＝`, `equals` and `等于` between two values are equalities; `≈`, `≒` and
  `\\approx` are approximate ones.

Not here: parsing and computing (`exact.py`), splitting runs of tokens into chains
(`chains.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasonfactory.generators.verify.claim_units import labels, unit_symbols

CODE_BLOCK = re.compile(r"```[A-Za-z0-9_+-]*\n?.*?(?:```|$)", re.S)

_D = "[0-9０-９]"
_SEP = r"(?:,\\!|,|\\,|\{,\}|\\!|\\ )"  # thousands: `1,000`, `1\,000`, `1{,}000`, `729,\!000`
_TOKEN = re.compile(
    rf"(?P<rep>{_D}*\.{_D}*\\overline\s*\{{{_D}+\}}|(?:{_D}+\.{_D}*|\.{_D}+)\({_D}+\))"
    rf"|(?P<sci>(?:{_D}+(?:\.{_D}+)?|\.{_D}+)[eE][-+]?{_D}+(?![A-Za-z0-9_]))"
    rf"|(?P<num>(?:(?<=[$€£¥]){_D}{{1,3}}(?: {_D}{{3}})+(?![0-9０-９/])"  # `$350 000`
    rf"|{_D}{{1,3}}(?:{_SEP}{_D}{{3}})+(?!{_D})(?:\.{_D}+)?|{_D}+\.{_D}+|{_D}+|\.{_D}+)"
    r"(?:\.\.\.|…|\\ldots|\\dots(?![A-Za-z]))?|[½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞])"
    r"|(?P<fracop>\\[dt]?frac(?![A-Za-z]))"
    r"|(?P<op>\*\*|[-+*/^×·∗÷−–＋－＊／]|\\(?:times|cdot|ast|div)(?![A-Za-z]))"
    r"|(?P<wop>(?<![A-Za-z])(?:times|multiplied\s+by|divided\s+by|plus|minus|of|[xX])(?![A-Za-z])"
    r"|乘以|除以|加上|减去|[乘除加减])"
    r"|(?P<eqword>(?<![A-Za-z])equals(?![A-Za-z])|等于)"
    r"|(?P<pct>%|％|\\%|(?<![A-Za-z])percent(?![A-Za-z]))"
    r"|(?P<lp>\(|（|\{)|(?P<rp>\)|）|\})"
    r"|(?P<approx>≈|≒|\\approx(?![A-Za-z]))|(?P<eq>=|＝)"
    rf"|(?P<cur>\\\$|\$(?=\s?-?{_D})|€|£|¥|￥)"
    r"|(?P<space>\s+|&(?=\s*[=≈])|\\(?:left|right|quad|qquad)(?![A-Za-z])|\\[,;:! ])"
    r"|(?P<text>\\(?:text|mbox|mathrm|textrm|textbf|textit)\s*\{[^{}]*\})"
    r"|(?P<cjk>[\u3400-\u9fff]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z_0-9']*(?:-[A-Za-z]+)*|\\[A-Za-z]+)|(?P<other>.)",
    re.S,
)
_OPS = {"**": "^", "×": "*", "·": "*", "∗": "*", "÷": "/", "−": "-", "–": "-"}
_OPS |= {"＋": "+", "－": "-", "＊": "*", "／": "/"}
_OPS |= {"\\times": "*", "\\cdot": "*", "\\ast": "*", "\\div": "/"}
_WOPS = {"times": "*", "multiplied by": "*", "divided by": "/", "plus": "+", "minus": "-"}
_WOPS |= {"of": "*", "x": "*", "乘以": "*", "除以": "/", "加上": "+", "减去": "-"}
_WOPS |= {"乘": "*", "除": "/", "加": "+", "减": "-"}
_VULGAR = dict(
    zip(
        "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞",
        [
            "1/2",
            "1/3",
            "2/3",
            "1/4",
            "3/4",
            "1/5",
            "2/5",
            "3/5",
            "4/5",
            "1/6",
            "5/6",
            "1/8",
            "3/8",
            "5/8",
            "7/8",
        ],
        strict=True,
    )
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")

# kinds a claim is made of; `skip` tokens (spaces, units, currency) sit inside one unread
MATH = {"num", "fracop", "op", "pct", "lp", "rp", "eq", "approx", "skip"}
MAX_UNIT_WORDS = 8  # `1 pack of cloths per client`


@dataclass(frozen=True)
class Tok:
    kind: str
    norm: str  # the token as plain arithmetic: `\\times` -> `*`, `x` -> `*`, `（` -> `(`
    start: int
    end: int


def lex(text: str) -> list[Tok]:
    """The tokens of `text` as written: nothing resolved, nothing masked; a number's `norm`
    is plain (`1,000`, `0.1(6)` for a repeating decimal), an operator's is one of `+ - * / ^`.

    >>> [t.norm for t in lex("1{,}000 × 0.333... - 2x") if t.kind != "space"]
    ['1,000', '*', '0.(3)', '-', '2', 'x']
    """
    return [_raw(m) for m in _TOKEN.finditer(text)]


def tokens(text: str) -> list[Tok]:
    """The tokens of step text, with units, word operators and parentheticals resolved.

    >>> [t.norm for t in tokens("20 sheep + 7 x 1.5 = 30.5 sheep.") if t.norm.strip()]
    ['20', '+', '7', '*', '1.5', '=', '30.5', 'sheep', '.']
    """
    # Code blocks are blanked with spaces of the same length: claims are made in words and
    # positions must stay those of `text`.
    masked = CODE_BLOCK.sub(lambda m: " " * len(m.group()), text)
    return _resolve(lex(masked))


_DOTS = re.compile(r"(?:\.\.\.|…|\\ldots|\\dots)$")


def _number(tok: str) -> str:
    """A number as plain digits: separators as `,`, full-width digits as ASCII, and trailing
    dots after a decimal read as its repeating period (`0.1666...` -> `0.1(6)`)."""
    tok = re.sub(r"\\,|\{,\}|\\? ", ",", tok.translate(_FULLWIDTH).replace("\\!", ""))
    body = _DOTS.sub("", tok)
    return _period(body) if body != tok and "." in body else body


def _period(number: str) -> str:
    """`0.1666` as `0.1(6)`: the shortest period its decimals end with twice (`0.67` has none
    and stays as written, a value cut at its last place)."""
    whole, _, fixed = number.partition(".")
    for k in range(1, 7):
        if len(fixed) >= 2 * k and fixed[-k:] == fixed[-2 * k : -k]:
            rep, fixed = fixed[-k:], fixed[:-k]
            while fixed.endswith(rep):
                fixed = fixed[: -len(rep)]
            return f"{whole}.{fixed}({rep})"
    return number


def _raw(m: re.Match) -> Tok:
    kind, tok = m.lastgroup, m.group()
    if kind == "num":
        tok = _VULGAR.get(tok) or _number(tok)
    elif kind == "sci":
        kind, tok = "num", tok.translate(_FULLWIDTH)
    elif kind == "rep":  # `0.\overline{3}`: written `0.(3)` for the parser
        kind = "num"
        head, over, rep = tok.translate(_FULLWIDTH).partition("\\overline")
        tok = f"{head}({rep.strip(' {}')})" if over else head
    elif kind == "op":
        tok = _OPS.get(tok, tok)
    elif kind == "wop":
        tok = " ".join(tok.split())
    elif kind == "pct":
        tok = "%"
    elif kind == "lp":
        tok = "("
    elif kind == "rp":
        tok = ")"
    elif kind in ("eq", "eqword"):
        tok = "="
    elif kind == "approx":
        tok = "≈"
    elif kind in ("space", "cur"):
        kind, tok = ("space" if kind == "space" else "cur"), " "
    return Tok(kind, tok, m.start(), m.end())


def mixed_at(toks: list[Tok], k: int) -> bool:
    """`3 1/2` at `toks[k]`: a whole number, a space, then a fraction."""
    part = [t.kind for t in toks[k : k + 4]] == ["num", "num", "op", "num"]
    return (
        part
        and toks[k + 2].norm == "/"
        and toks[k].norm.isdigit()
        and (toks[k].end < toks[k + 1].start and toks[k + 1].norm.isdigit())
    )


def _next(toks: list[Tok], i: int, step: int) -> int | None:
    """Index of the nearest token from `i` in direction `step` that is not a space; None
    past `_NEAR` blanks (a run of currency signs or spaces that long joins nothing, and the
    bound keeps every look-around constant-time on hostile text)."""
    for _ in range(_NEAR):
        i += step
        if not 0 <= i < len(toks):
            return None
        if toks[i].kind not in ("space", "skip"):
            return i
    return None


_NEAR = 8


def _kind(toks: list[Tok], i: int | None) -> str | None:
    return toks[i].kind if i is not None else None


def _starts_value(toks: list[Tok], i: int | None) -> bool:
    if i is None:
        return False
    kind = toks[i].kind
    if kind == "cur":
        return _starts_value(toks, _next(toks, i, 1))
    return kind in ("num", "lp", "fracop") or (kind == "op" and toks[i].norm == "-")


def _unit_word(tok: Tok) -> bool:
    if tok.kind in ("cjk", "text"):
        return True
    return tok.kind == "word" and len(tok.norm) >= 2 and not tok.norm.startswith("\\")


def _resolve(toks: list[Tok]) -> list[Tok]:
    toks = list(toks)
    for i, tok in enumerate(toks):
        if tok.kind == "cur":
            toks[i] = Tok("skip", " ", tok.start, tok.end)
    # word operators: only between two values
    for i, tok in enumerate(toks):
        if tok.kind == "eqword":  # `3 times 3 equals 9`, `5乘以3等于15`
            ok = _value_before(toks, i) is not None and _starts_value(toks, _next(toks, i, 1))
            toks[i] = Tok("eq", "=", tok.start, tok.end) if ok else _as_word(tok)
            continue
        if tok.kind != "wop":
            continue
        before, after = _value_before(toks, i), _next(toks, i, 1)
        word = tok.norm.lower() if tok.norm.isascii() else tok.norm
        ok = before is not None and _starts_value(toks, after)
        if ok and word == "of":
            ok = toks[before].kind == "pct" or _fraction_before(toks, before)
        if ok and word == "x":
            # `3x - 3`, `4x-13`: a variable; `2x3`, `7 x 1.5`, `$2000x 10/100`: times
            ok = toks[after].kind != "op"
        toks[i] = Tok("op", _WOPS[word], tok.start, tok.end) if ok else _as_word(tok)
    # labels before numbers (`= shoe size 25`); one-letter symbols the step names (`60g`)
    for k in labels(toks, _unit_word):
        toks[k] = Tok("skip", " ", toks[k].start, toks[k].end)
    symbols = unit_symbols(toks)
    # units after a number, and parentheticals after a result
    i = 0
    while i < len(toks):
        tok = toks[i]
        prev = _next(toks, i, -1)
        after_value = _kind(toks, prev) in ("num", "pct", "rp")
        if after_value and tok.kind == "lp" and _paren_note(toks, i):
            j = _close(toks, i)
            for k in range(i, j + 1):
                toks[k] = Tok("skip", " ", toks[k].start, toks[k].end)
            i = j + 1
            continue
        per = tok.norm == "/" and i + 1 < len(toks) and _unit_word(toks[i + 1])
        glued_to_bracket = (
            prev is not None and toks[prev].kind == "rp" and toks[prev].end == tok.start
        )
        if after_value and not glued_to_bracket and (per or _unit_word(tok) or i in symbols):
            j = _unit_end(toks, i + 1 if per else i, i in symbols)
            if j is not None:
                for k in range(i, j + 1):
                    toks[k] = Tok("skip", " ", toks[k].start, toks[k].end)
                i = j + 1
                continue
        i += 1
    return toks


def _value_before(toks: list[Tok], i: int) -> int | None:
    """The value a word operator at `i` applies to: the token before it, or the number
    before a unit (`23 slices x $4`, `25 miles per gallon x 12 gallons`)."""
    j = _next(toks, i, -1)
    words = 0
    while j is not None and words < MAX_UNIT_WORDS and (_unit_word(toks[j]) or toks[j].norm == "/"):
        words += _unit_word(toks[j])
        j = _next(toks, j, -1)
    if j is None or toks[j].kind not in ("num", "rp", "pct"):
        return None
    return j


def _as_word(tok: Tok) -> Tok:
    return Tok("cjk" if not tok.norm.isascii() else "word", tok.norm, tok.start, tok.end)


def _fraction_before(toks: list[Tok], i: int) -> bool:
    """`1/2 of`, `0.5 of`, `\\frac{1}{2} of`: a share of something."""
    if toks[i].kind == "num" and "." in toks[i].norm:
        return True
    if toks[i].kind == "rp":
        return True
    j = _next(toks, i, -1)
    return toks[i].kind == "num" and j is not None and toks[j].norm == "/"


def _unit_end(toks: list[Tok], i: int, symbol: bool = False) -> int | None:
    """The last token of a unit starting at `i` (`GB/minute`, `miles per hour`, `of a skein
    of yarn`), when an operator, `=`, `≈` or `)` follows it; None when prose follows (then it
    is not a unit). `symbol`: `toks[i]` is a one-letter unit symbol (`claim_units`)."""
    words, j, last = 0, i, None
    while j < len(toks):
        if (_phrase_word(toks, j, words) or (symbol and j == i)) and words < MAX_UNIT_WORDS:
            words += 1
            last = j
            j += 1
            if j < len(toks) and toks[j].kind == "space" and toks[j].norm == " ":
                nxt = _next(toks, j - 1, 1)
                if nxt is not None and (_phrase_word(toks, nxt, words) or toks[nxt].norm == "/"):
                    j = nxt
                    continue
            if j < len(toks) and toks[j].norm == "/":
                # `GB/minute`: a slash followed by a word is part of the unit
                nxt = j + 1
                if nxt < len(toks) and _unit_word(toks[nxt]):
                    j = nxt
                    continue
            break
        break
    if last is None:
        return None
    follow = _next(toks, last, 1)
    if follow is None:
        return None
    kind = toks[follow].kind
    sign = (
        kind == "op"
        and toks[follow].norm in "+-"
        and follow + 1 < len(toks)
        and toks[follow + 1].start == toks[follow].end
        and toks[follow].start > toks[follow - 1].end
    )  # `4 gives -11213141`: a signed number, not `20 sheep - 5 sheep`
    if kind in ("eq", "approx", "rp") or (kind == "op" and toks[follow].norm != "^" and not sign):
        return last
    return None


def _phrase_word(toks: list[Tok], j: int, words: int) -> bool:
    """A word of a unit phrase: a unit word, or `a` inside one before a noun (`of a skein`)."""
    if _unit_word(toks[j]):
        return True
    k = _next(toks, j, 1)
    return bool(words) and toks[j].norm in ("a", "A") and k == j + 2 and _unit_word(toks[k])


def _paren_note(toks: list[Tok], i: int) -> bool:
    """`(minutes)`, `(in total)`, `（个）`: a bracket that opens with a word."""
    j = _next(toks, i, 1)
    return j is not None and _unit_word(toks[j]) and _close(toks, i) is not None


def _close(toks: list[Tok], i: int) -> int | None:
    depth = 0
    for j in range(i, min(len(toks), i + 64)):
        if toks[j].kind == "lp":
            depth += 1
        elif toks[j].kind == "rp":
            depth -= 1
            if depth == 0:
                return j
        elif toks[j].kind in ("eq", "approx"):
            return None
    return None
