"""Whether an arithmetic claim holds: the judge of the claim reader.

A link `left = right` found by `chains.py` holds when its two exact values (`exact.py`) are
equal, with the tolerances people mean when they write a result: a decimal may be the other
side rounded or cut to its last shown place (`2/3 = 0.67`), `≈` has the tolerance of the
digits written (`1000 / 3 ≈ 330`), and a percent may name the number it follows
(`18 / 450 x 100 = 4%`), and a result written to a double's precision may be the float code
prints (`0.1 + 0.2 = 0.30000000000000004`). A link whose operation is in words (`3 hours = 180
minutes`), that computes nothing (`2 = 2`, `2 bolts = 4 bolts`) or that restarts a running
total (`3/2 = 1.50 + 3.00 = 4.50`) is not judged (None), never guessed; a result written
first (`35 = 12 * 5`) is judged when nothing but the `=` stands between the two sides.

Not here: finding claims (`chains.py`), a step's verdict from its claims (`steps.py`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from reasonfactory.generators.verify.chains import Claim, Side, parse_claim
from reasonfactory.generators.verify.exact import UNDEFINED, Value


def same_value(
    a: Value, b: Value, places_a: int | None = None, places_b: int | None = None
) -> bool:
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
        if abs(literal - exact) * 2 * scale <= 1 or literal == Fraction(int(exact * scale), scale):
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
    scale = Fraction(10) ** places
    if abs(literal - exact) * 2 * scale <= 1:
        return True
    cut = Fraction(int(exact * scale)) / scale
    return literal == cut


def judge(claim: Claim) -> bool | None:
    """Whether one link holds; None when it cannot be judged from the text alone.

    `≈` holds when one side is the other rounded or cut to the places written (`1,200`
    written with `≈` has the tolerance of its hundreds). A chain that opens with two
    different plain numbers (`3 hours = 180 minutes`, `half of 10 = 5` read as `10 = 5`)
    hides its operation in words: it is not judged.

    >>> from reasonfactory.generators.verify.chains import find_equations
    >>> [judge(c) for c in find_equations("10 / 3 ≈ 3.3, 1000 / 3 ≈ 300, 10 / 3 ≈ 3.5")]
    [True, True, False]
    """
    left, right = claim.left, claim.right
    if left.literal and right.literal and not claim.approx:
        # `2 = 2`, `1 dollar per lemon = 1 dollar per lemon seedling`: no operation, nothing
        # computed, whether the numbers agree or not (`2 bolts = 4 bolts` is not judged either)
        return None
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
    if _float_printed(left, right.value) or _float_printed(right, left.value):
        return True  # `0.1 + 0.2 = 0.30000000000000004`: the result as Python prints it
    if left.literal and claim.opening and not claim.bare:
        return None  # `1.5 quarts = 4 * 1.5`: an operation in words; `35 = 12 * 5` is judged
    # `18 / 450 x 100 = 4%`: the percent sign names what the number already is
    percent = right.shown.endswith("%") and "%" not in left.shown
    if percent and same_value(left.value, right.value * 100, None, _shifted(right.places)):
        return True
    if right.first is not None and right.first_op and same_value(left.value, right.first):
        return None  # `3/2 = 1.50 + 3.00 = 4.50`: a running total restarts the chain
    return holds


def _float_printed(side: Side, exact: Value) -> bool:
    """A decimal written to a double's precision (15+ significant digits, as code prints a
    float) that equals `exact` up to the double's rounding."""
    digits = re.sub(r"[^0-9]", "", side.shown).lstrip("0")
    if side.places is None or len(digits) < 15 or exact is UNDEFINED:
        return False
    return abs(side.value - exact) <= Fraction(1, 10**12) * max(1, abs(exact))


def claim_holds(claim: Claim | str) -> bool | None:
    """Whether the claim is true, computed exactly; None if `claim` is not a claim.

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
