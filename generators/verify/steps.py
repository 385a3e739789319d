"""Step verifiers: the arithmetic claims of a step (`equations`) and its Python (`code`).

`check_equations` recomputes every numeric claim a step makes (`22 * 3 = 66`, each link of
a chain such as `4 + 5 = 9 = 3 * 3`); the claims are found and computed exactly by
`generators.verify.claims` (a strict tokeniser and parser over sympy numbers; step text is
untrusted and never reaches `sympify` or `eval`). A decimal written in a claim may be rounded
or cut to its last shown place (`10 / 3 = 3.33` holds).

`check_code` judges a code step from its sandbox run (`generators.verify.sandbox`): an error, a
timeout, a memory or policy violation fails it, and so does printed output that disagrees
with the result the step states in words.

Both return a `StepCheck`, the record stored in `nodes.meta.check`. Not here: finding and
computing claims (`claims.py`), running the code (`sandbox.py`) and rollout
labels (`reasonfactory.generators.verify.rollout`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from reasonfactory.generators.verify.claims import (
    CODE_BLOCK,
    MAX_DIGITS,
    UNDEFINED,
    find_equations,
    same_value,
)
from sympy import Rational


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


def prose_of(text: str) -> str:
    """A step without its fenced code blocks (claims are made in words, not in code)."""
    return CODE_BLOCK.sub(" ", text)


def code_of(text: str) -> str:
    """The Python in a step's fenced blocks, joined (empty when it has none).

    >>> code_of("Step 1: 2 + 3 = 5.\\n```python\\ns1 = 2 + 3\\nprint(s1)\\n```")
    's1 = 2 + 3\\nprint(s1)'
    """
    blocks = re.findall(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", text, re.S)
    return "\n".join(b.rstrip("\n") for b in blocks).strip("\n")


def _explain(left: str, a, right: str, b) -> str:
    if re.fullmatch(r"[-+]?[\d.,]+", right.replace(" ", "")):
        return f"{left} is {show(a)}, not {right}"
    return f"{left} is {show(a)}, but {right} is {show(b)}"


def show(value) -> str:
    """A value as a person writes it: `66`, `-3`, `53/4`."""
    if value is UNDEFINED:
        return "undefined (division by zero)"
    return str(value)


def check_equations(text: str) -> StepCheck:
    """Recompute every numeric claim in a step; the first false one fails it.

    >>> check_equations("Step 2: 22 * 3 = 76.").detail
    '22 * 3 is 66, not 76'
    >>> check_equations("Step 2: 22 * 3 = 66.").ok
    True
    """
    claims = find_equations(text)
    for claim in claims:
        left, right = claim.left, claim.right
        if not same_value(left.value, right.value, left.places, right.places):
            return StepCheck(
                "equations",
                False,
                claim=claim.shown,
                expected=show(left.value),
                detail=_explain(left.shown, left.value, right.shown, right.value),
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
    claims = find_equations(text)
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    printed = _PRINTED.match(lines[-1]) if lines else None
    if claims and printed:
        stated = claims[-1]
        value = _number(printed.group(1))
        if value is not None and not _close(value, stated.right.value, stated.right.places):
            return StepCheck(
                "code",
                False,
                claim=stated.shown,
                expected=printed.group(1),
                detail=f"the code prints {printed.group(1)}, the step says {stated.right.shown}",
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
    if stated is UNDEFINED:
        return False
    if same_value(printed, stated, None, places):
        return True
    # Python prints floats: 10/3 is 3.3333333333333335.
    return abs(printed - stated) <= Rational(1, 10**9) * max(1, abs(stated))
