"""Text normalisation the filters share: words for n-grams, and prose with math and code cut out.

`normalise_words` is the one word splitter for dedup shingles, repetition n-grams and
decontamination n-grams (NFKC, lower case, runs of letters or digits), so a benchmark and
a problem set are compared on the same terms. `MATH_AND_CODE` is a regex (Rust syntax, for
polars) matching the spans the language rules ignore: LaTeX, code, equations.

Pure functions; nothing here decides a verdict.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")


def normalise_words(text: str | None) -> list[str]:
    """Lower-cased words (letters/digits runs) after NFKC; punctuation and markup dropped.

    >>> normalise_words("What is $\\\\frac{1}{2}$ of 10?")
    ['what', 'is', 'frac', '1', '2', 'of', '10']
    """
    if not text:
        return []
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def ngrams(words: list[str], n: int) -> list[str]:
    """Space-joined word n-grams; a text shorter than n gives none.

    >>> ngrams(["a", "b", "c"], 2)
    ['a b', 'b c']
    """
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


# Spans that are not prose: fenced and inline code, display and inline math, LaTeX commands
# with their brace arguments, and equation-like runs of numbers and operators. Rust regex
# syntax (polars `str.replace_all`); no look-around.
MATH_AND_CODE = "|".join(
    [
        r"```[\s\S]*?(?:```|$)",  # fenced code (an unclosed fence runs to the end)
        r"`[^`\n]*`",  # inline code
        r"\$\$[\s\S]*?\$\$",  # display math
        r"\$[^$\n]*\$",  # inline math
        r"\\\[[\s\S]*?\\\]",
        r"\\\([\s\S]*?\\\)",
        r"\\[A-Za-z]+\*?(?:\{[^{}]*\})*",  # \frac{1}{2}, \boxed{5}, \text{cm}
        r"[0-9A-Za-z_.]*[0-9][0-9A-Za-z_.]*",  # numbers, x2, 3.14, v1.2
        r"[-+*/=<>^_|(){}\[\]]+",  # operators and brackets
    ]
)
