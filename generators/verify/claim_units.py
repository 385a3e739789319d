"""Units the claim reader skips like spaces that `claim_tokens` cannot tell from one token.

`claim_tokens._resolve` skips unit words after a number (`20 sheep + 160 sheep`); these two
need the whole step to decide:
- a one-letter unit symbol glued to a number (`60g * 4/5 = 240g/5 = 48 grams`), only where
  the step names that unit in words (`grams`) and never writes the letter on its own: a
  letter glued to a number is far more often an unknown (`6s = 120`, `10h + h = 88,000`,
  `4m = 32`; in GSM8K's test solutions every glued letter but one `g` is a variable);
- a label written before numbers (`5 * shoe size 5 = shoe size 25`): the same one to three
  words right before two numbers with only arithmetic between them (`shoe size 25 + shoe
  size 5 = 30`). One number with words before it is prose (`3 + the rest 5`), not a label.

Both return token indices; the caller marks them skipped. Hand-written: these are decisions
over the reader's own tokens, which no library holds.

Not here: the tokens and the other units (`claim_tokens.py`).
"""

from __future__ import annotations

# one-letter symbols and the names that must be written in words in the same step
_SYMBOLS = {"g": ("gram",), "l": ("liter", "litre"), "L": ("liter", "litre")}
_SYMBOLS |= {"m": ("meter", "metre"), "h": ("hour",)}
_BETWEEN = {"num", "op", "eq", "approx", "lp", "rp", "pct", "space", "skip", "cur", "fracop"}
MAX_LABEL_WORDS = 3


def _glued(toks: list, i: int) -> bool:
    return i > 0 and toks[i - 1].kind == "num" and toks[i - 1].end == toks[i].start


def unit_symbols(toks: list) -> set[int]:
    """Indices of one-letter unit symbols glued to a number whose unit the step names.

    >>> from reasonfactory.generators.verify.claim_tokens import lex
    >>> toks = lex("60g * 4/5 = 240g/5 = 48 grams")
    >>> [(toks[k - 1].norm, toks[k].norm) for k in sorted(unit_symbols(toks))]
    [('60', 'g'), ('240', 'g')]
    >>> unit_symbols(lex("10h + h = 88,000 hours")), unit_symbols(lex("6g = 12"))
    (set(), set())
    """
    words = [t.norm.lower() for t in toks if t.kind == "word"]
    alone = {t.norm for k, t in enumerate(toks) if t.kind == "word" and not _glued(toks, k)}
    return {
        k
        for k, t in enumerate(toks)
        if t.kind == "word"
        and t.norm in _SYMBOLS
        and t.norm not in alone
        and _glued(toks, k)
        and any(w.startswith(name) for w in words for name in _SYMBOLS[t.norm])
    }


def _label(toks: list, k: int, unit_word) -> list[int]:
    """Indices of the words right before the number `toks[k]` (one blank apart), last first."""
    out, j = [], k - 1
    while len(out) < MAX_LABEL_WORDS and j >= 1 and toks[j].kind == "space":
        if toks[j].end - toks[j].start != 1 or not unit_word(toks[j - 1]):
            break
        out.append(j - 1)
        j -= 2
    return out


def labels(toks: list, unit_word) -> set[int]:
    """Indices of the words of labels written before numbers (`shoe size 5`): the longest
    common ending (up to three words, `unit_word` each) of the words before two numbers
    with only arithmetic between the first number and the second's label.

    >>> from reasonfactory.generators.verify.claim_tokens import lex
    >>> unit_word = lambda t: t.kind == "word" and len(t.norm) > 1
    >>> toks = lex("is shoe size 25 + shoe size 5 = 30")
    >>> [toks[k].norm for k in sorted(labels(toks, unit_word))]
    ['shoe', 'size', 'shoe', 'size']
    >>> labels(lex("day 1 he ran 5 miles, so day 2 = 7"), unit_word)
    set()
    >>> len(labels(lex("is shoe size 30/2 = shoe size 15"), unit_word))
    4
    """
    numbers = [(k, _label(toks, k, unit_word)) for k, t in enumerate(toks) if t.kind == "num"]
    labelled = [(k, words) for k, words in numbers if words]
    out: set[int] = set()
    for (a, before_a), (_, before_b) in zip(labelled, labelled[1:], strict=False):
        if any(t.kind not in _BETWEEN for t in toks[a + 1 : before_b[-1]]):
            continue
        same = 0
        for x, y in zip(before_a, before_b, strict=False):
            if toks[x].norm.lower() != toks[y].norm.lower():
                break
            same += 1
        if same:
            out.update(before_a[:same] + before_b[:same])
    return out
