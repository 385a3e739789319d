"""Step verifiers: the arithmetic claims of a step (`equations`) and its Python (`code`).

`check_equations` recomputes every numeric claim a step makes (`22 * 3 = 66`, each link of
a chain such as `4 + 5 = 9 = 3 * 3`); the claims are found by `chains.py`, computed exactly by
the one arithmetic reader (`exact.py`; step text is untrusted and never reaches `sympify` or
`eval`) and judged by `judge.py`. A decimal written in a claim may be rounded or cut to its
last shown place (`10 / 3 = 3.33` holds).

`check_code` judges a code step from its sandbox run (`generators.verify.sandbox`): an error, a
timeout, a memory or policy violation fails it, and so does printed output that disagrees
with the result the step states in words.

Both return a `StepCheck`, the record stored in `nodes.meta.check`. Not here: finding,
computing and judging claims (`chains.py`, `exact.py`, `judge.py`), running the code
(`sandbox.py`) and rollout
labels (`reasonfactory.generators.verify.rollout`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from fractions import Fraction

from reasonfactory.generators.verify.chains import Claim, find_equations
from reasonfactory.generators.verify.claim_tokens import CODE_BLOCK
from reasonfactory.generators.verify.exact import UNDEFINED, read_number
from reasonfactory.generators.verify.judge import judge, same_value


@dataclass(frozen=True)
class StepCheck:
    """One verifier's verdict on one step; `claim`/`expected` name a false equation.

    `ok` is True (every claim judged holds), False (one does not) or None: `unverified`,
    the step makes no claim the verifier can check (prose, algebra, a unit conversion).
    """

    kind: str
    ok: bool | None
    claim: str | None = None
    expected: str | None = None
    detail: str | None = None
    claims: int = 0  # claims judged

    @property
    def unverified(self) -> bool:
        return self.ok is None

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


def read_claims(text: str) -> list[dict]:
    """Every equation a step writes, as read and judged: what `reasonfactory check steps`
    prints. `holds` is None for a link that cannot be judged from the text alone.

    >>> [(c["claim"], c["value"], c["holds"]) for c in read_claims("So 9 * 2 = $17 a day.")]
    [('9 * 2 = 17', '18', False)]
    """
    return [_read(text, c) for c in find_equations(text)]


def _read(text: str, claim: Claim) -> dict:
    return {
        "written": text[claim.start : claim.end],
        "claim": claim.shown,
        "value": show(claim.left.value),
        "stated": show(claim.right.value),
        "approx": claim.approx,
        "holds": judge(claim),
    }


def check_equations(text: str) -> StepCheck:
    """Recompute every numeric claim in a step; the first false one fails it; a step with
    nothing checkable is unverified (`ok` None).

    >>> check_equations("Step 2: 22 * 3 = 76.").detail
    '22 * 3 is 66, not 76'
    >>> check_equations("Step 2: 22 * 3 = 66.").ok
    True
    >>> check_equations("So the answer is the number of apples left.").ok is None
    True
    """
    return check_claims(find_equations(text))


def check_claims(claims: list[Claim], solution: str | tuple[str, ...] | None = None) -> StepCheck:
    """`check_equations` on claims already read from a step (read once, used twice).

    `solution`: the step was rewritten at the thought's solution (`algebra.at_solution`,
    e.g. `(9)` for x, or one per unknown): a link with a value in it is judged by its two
    values alone (the unknown, not words, stands where a literal is).
    """
    values = (solution,) if isinstance(solution, str) else solution or ()
    judged = 0
    for claim in claims:
        holds = judge(claim)
        restated = claim.left.literal and claim.right.literal  # `(9) = 9`: the assignment
        at = any(value in claim.lhs + claim.rhs for value in values)
        if holds is None and at and not restated:
            holds = same_value(
                claim.left.value, claim.right.value, claim.left.places, claim.right.places
            )
        if holds is None:
            continue
        judged += 1
        if not holds:
            left, right = claim.left, claim.right
            return StepCheck(
                "equations",
                False,
                claim=claim.shown,
                expected=show(left.value),
                detail=_explain(left.shown, left.value, right.shown, right.value),
                claims=judged,
            )
    if not judged:
        return StepCheck("equations", None, detail="no checkable claim")
    return StepCheck("equations", True, detail=f"{judged} claim(s) hold", claims=judged)


# -- code ------------------------------------------------------------------------------------


def check_code(text: str, result) -> StepCheck:
    """Judge a code step from its `sandbox.ExecutionResult`.

    Fails on an error, a timeout, a memory or policy violation, or when the last line it
    printed is a number that differs from the result the step states in words (the right
    side of its last claim).
    """
    if not result.ok:
        return StepCheck("code", False, detail=result.summary())
    claims = find_equations(text)
    lines = [line.strip() for line in result.stdout.strip().splitlines() if line.strip()]
    printed = read_number(lines[-1]) if lines else None  # `66`, `3.3333333333333335`, `53/4`
    if claims and printed:
        stated = claims[-1]
        if not _close(printed.value, stated.right.value, stated.right.places):
            return StepCheck(
                "code",
                False,
                claim=stated.shown,
                expected=lines[-1],
                detail=f"the code prints {lines[-1]}, the step says {stated.right.shown}",
            )
    return StepCheck("code", True, detail=(result.stdout.strip()[-200:] or "no output"))


def _close(printed, stated, places: int | None) -> bool:
    if stated is UNDEFINED:
        return False
    if same_value(printed, stated, None, places):
        return True
    # Python prints floats: 10/3 is 3.3333333333333335.
    return abs(printed - stated) <= Fraction(1, 10**9) * max(1, abs(stated))


def fixed_errors(thought: str) -> tuple[int, int]:
    """(false steps, false steps fixed later) in a thought of `\\n\\n`-separated steps.

    A false step counts as detected and fixed when a later step makes a true claim with the
    same left side (`17 + 5 = 23.` ... `17 + 5 = 22.`), as a journey trace does after its
    feedback. Only prose is read (code blocks are not steps here). An error that leaves a
    true equation (an operand copied wrong: `12 - 12 = 0` for `12 - 26`) is not a false step
    and is not counted.

    >>> fixed_errors("Step 1: 17 + 5 = 23.\\n\\nWait: it is 22.\\n\\nStep 1: 17 + 5 = 22.")
    (1, 1)
    >>> fixed_errors("Step 1: 17 + 5 = 23.\\n\\nStep 2: 23 * 2 = 46.")
    (1, 0)
    >>> fixed_errors("Step 1: 17 + 5 = 22.")
    (0, 0)
    """
    claims = [
        (i, claim.left.shown.replace(" ", ""), judge(claim))
        for i, step in enumerate(thought.split("\n\n"))
        for claim in find_equations(prose_of(step))
    ]
    wrong = [(i, left) for i, left, holds in claims if holds is False]
    fixed = sum(
        any(j > i and other == left and holds for j, other, holds in claims) for i, left in wrong
    )
    return len(wrong), fixed
