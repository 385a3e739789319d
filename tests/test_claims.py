"""Claims in step text: found where written, judged exactly, and only arithmetic is read."""

from __future__ import annotations

import pytest
from reasonfactory.generators.verify.chains import find_claims, parse_claim
from reasonfactory.generators.verify.exact import evaluate, parse_arith
from reasonfactory.generators.verify.judge import claim_holds


@pytest.mark.parametrize(
    "text,claims",
    [
        ("Step 2: 22 * 3 = 66.", ["22 * 3 = 66"]),
        ("Step 1: 17 + 5 = 22.", ["17 + 5 = 22"]),
        (
            "Collect the x terms on the left: 5 - (-2) = 7, so 7x + 4 = 9.",
            ["5 - (-2) = 7"],
        ),
        ("Divide both sides by (-3): 12 / (-3) = -4, so x = -4.", ["12 / (-3) = -4"]),
        ("Step 3: (-45) + 31 = -14.", ["(-45) + 31 = -14"]),
        ("So 10 / 4 = 5/2 apples.", ["10 / 4 = 5/2"]),
        ("The total is 1.5 \\times 4 = 6.", ["1.5 \\times 4 = 6"]),
        ("(((17 + 5) * 3) - 8) / 2 = 29", ["(((17 + 5) * 3) - 8) / 2 = 29"]),
        ("We get x = 4 and y = 2.", []),  # no operation: not a claim
        ("3 + 4 = 3 * 2 + 1", []),  # a chained right side is not one number
        ("if a == 3 + 4", []),
        ("Let 2x + 3 = 7.", []),  # letters: algebra, not arithmetic
        # once misread as `200 + 350 = 1` (a true step judged false)
        ("She pays 1,200 + 350 = 1,550 dollars.", ["1,200 + 350 = 1,550"]),
        ("Sum: 12,000.5 - 0.5 = 12,000.", ["12,000.5 - 0.5 = 12,000"]),
        # chains: each link that computes a number is a claim; `9 = 3 * 3` is not one
        ("That is 4 + 5 = 9 = 3 * 3 apples.", ["4 + 5 = 9"]),
        ("So x = 12 / 3 = 4.", ["12 / 3 = 4"]),
        ("Then 2 + 2 = 4 = 1 + 3, and 8 / 2 = 4.", ["2 + 2 = 4", "8 / 2 = 4"]),
        ("Rounded: 2/3 = 0.67.", ["2/3 = 0.67"]),
        (
            r"$\frac{1}{2} + \frac{1}{4} = \frac{3}{4}$",
            [r"\frac{1}{2} + \frac{1}{4} = \frac{3}{4}"],
        ),
        ("7 − 10 = −3", ["7 − 10 = −3"]),
        ("f(3) = 9 and x^2 = 4", []),  # glued to a name
        ("Step 1: 17 + 5 = 22.\n```python\nprint(17 + 5 == 22)\n```", ["17 + 5 = 22"]),
    ],
)
def test_find_claims(text, claims):
    found = find_claims(text)
    assert [c.text for c in found] == claims
    for c in found:  # the span is where the claim is written
        assert text[c.start : c.end].replace(" ", "") == c.text.replace(" ", "")


@pytest.mark.parametrize(
    "claim,holds",
    [
        ("17 * 3 = 51", True),
        ("17 * 3 = 41", False),
        ("(-4) - 3 = -7", True),
        ("(-4) - 3 = -1", False),
        ("10 / 4 = 5/2", True),
        ("10 / 4 = 2.5", True),
        ("10 / 4 = 2", False),
        ("1 / 0 = 1", False),
        ("x = 2", None),
        ("import os = 1", None),
        ("1,200 + 350 = 1,550", True),
        ("1,200 + 350 = 1,650", False),
        ("2/3 = 0.67", True),  # rounded to the places written
        ("2/3 = 0.66", True),  # cut to the places written
        ("2/3 = 0.7", True),
        ("2/3 = 0.68", False),
        ("10 / 3 = 3.4", False),
        ("20% * 50 = 10", True),
        ("2^10 = 1024", True),
        ("3 × 4 = 13", False),
    ],
)
def test_claim_holds(claim, holds):
    assert claim_holds(claim) is holds


def test_chain_links_are_judged_one_by_one():
    from reasonfactory.generators.verify.chains import find_equations

    links = find_equations("That is 4 + 5 = 9 = 3 * 4 apples.")
    assert [(c.shown, claim_holds(c)) for c in links] == [("4 + 5 = 9", True), ("9 = 3 * 4", False)]
    text = "She pays 1,200 + 350 = 1,550 dollars."
    [c] = find_claims(text)
    assert (text[c.left.start : c.left.end], text[c.right.start : c.right.end]) == (
        "1,200 + 350",
        "1,550",
    )
    assert evaluate(c.node) == 1550 and c.rhs_value == 1550


def test_parse_claim_is_whole_string_only():
    assert parse_claim("17 * 3 = 41").lhs == "17 * 3"
    assert parse_claim("so 17 * 3 = 41") is None
    assert parse_claim("17 * 3 = 41 and 2 + 2 = 4") is None


@pytest.mark.parametrize(
    "text", ["2 ** 3", "2 + ", "(2 + 3", "2 + 3)", "abs(2)", "2 + 3; 4", "1e9", "2 3"]
)
def test_parser_rejects_what_is_not_arithmetic(text):
    assert parse_arith(text) is None


def test_strict_integers_mode_rejects_separators_and_decimals():
    assert evaluate(parse_arith("1,200 + 3")) == 1203
    assert parse_arith("1,200 + 3", decimals=False) is None
    assert parse_arith("2.5 + 3", decimals=False) is None


def test_parser_caps_size():
    assert parse_arith(" + ".join(["1"] * 200)) is None
    assert evaluate(parse_arith(" + ".join(["1"] * 50))) == 50
