"""Pull final answers out of text: `\\boxed{...}`, GSM8K's `#### N`, plain values.

Pure string functions over untrusted text: nothing here evaluates what it reads. Deciding
whether two answers are equal is the answer filter's job (math-verify); `answer_key` is only
a cheap normal form for counting votes.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_BRACE = re.compile(r"[{}]")
# Only the last MAX_BOXED_SCAN characters are read for a boxed answer (answers come last;
# a 100k-character reply of repeated openings must not cost more than a normal one).
MAX_BOXED_SCAN = 50_000


def extract_boxed(text: str | None) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None.

    One pass with a stack of open braces (linear in the text, whatever it holds) over at
    most the last `MAX_BOXED_SCAN` characters: bounded work by construction, so it needs no
    timeout, on any thread.

    >>> extract_boxed(r"so \\boxed{1} or rather \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> extract_boxed("\\\\boxed{" * 3) is None
    True
    """
    if not text:
        return None
    text = text[-MAX_BOXED_SCAN:]
    openers = {m.end() - 1 for m in _BOXED.finditer(text)}  # index of each boxed's "{"
    if not openers:
        return None
    stack: list[int] = []
    best: tuple[int, int] | None = None  # (opening brace, closing brace) of the last boxed
    for m in _BRACE.finditer(text):
        i = m.start()
        if text[i] == "{":
            stack.append(i)
        elif stack:
            j = stack.pop()
            if j in openers and (best is None or j > best[0]):
                best = (j, i)
    return text[best[0] + 1 : best[1]].strip() if best else None


def count_boxed(text: str | None) -> int:
    return len(_BOXED.findall(text or ""))


def extract_gsm8k(text: str | None) -> str | None:
    """The number after `####` in a GSM8K solution, without thousands separators.

    >>> extract_gsm8k("She makes 9 * 2 = $18.\\n#### 1,800")
    '1800'
    """
    if not text:
        return None
    m = _GSM8K.search(text)
    if not m:
        return None
    num = _NUMBER.search(m.group(1))
    return num.group(0).replace(",", "") if num else m.group(1).strip() or None


_STRIP = re.compile(r"\\text\{([^}]*)\}|\\[,;! ]|\\left|\\right|\$|\s+")


def answer_key(answer: str | None) -> str | None:
    """A cheap normal form for grouping votes: `\\dfrac{1}{2}` and `\\frac{1}{2}` collide.

    >>> answer_key(" \\\\dfrac{1}{2} ") == answer_key("\\\\frac{1}{2}")
    True
    """
    if answer is None:
        return None
    a = _STRIP.sub(lambda m: m.group(1) or "", answer).replace("\\dfrac", "\\frac")
    a = a.replace("\\tfrac", "\\frac").rstrip(".")
    if re.fullmatch(r"-?\d[\d,]*", a):
        a = a.replace(",", "")
    return a or None
