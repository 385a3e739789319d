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


def extract_boxed(text: str | None) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None.

    >>> extract_boxed(r"so \\boxed{1} or rather \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    if not text:
        return None
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start : i - 1].strip()
    return None


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
