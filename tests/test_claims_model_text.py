"""The claim reader on what a real model writes (SmolLM2-135M-Instruct replies,
tests/fixtures/smollm2_replies.jsonl) and on GSM8K's algebraic human solutions
(`../shared/data/gsm8k_test.jsonl`): the misreadings the fixture's audit found, fixed.

Each row: text, then the claims read as (shown, holds).
"""

from __future__ import annotations

import polars as pl
import pytest
from reasonfactory.filters.steps import steps_filter
from reasonfactory.generators.verify.algebra import at_solution, solved_value
from reasonfactory.generators.verify.steps import read_claims

CLAIMS = [
    # equations on consecutive lines, no punctuation (SmolLM2)
    ("2 * 6 = 12\n12 * 41 = 444", [("2 * 6 = 12", True), ("12 * 41 = 444", False)]),
    ("9 * 4 = 24\nThe final answer is 24", [("9 * 4 = 24", False)]),
    # list bullets are no minus signs (SmolLM2)
    (
        "- 328 / 4 = 90\n- 22 / 2 = 1\n- 8 / 2 = 4",
        [("328 / 4 = 90", False), ("22 / 2 = 1", False), ("8 / 2 = 4", True)],
    ),
    ("- 17 = 31 + 3\n- 31 = 30 - 23", [("17 = 31 + 3", False), ("31 = 30 - 23", False)]),
    # a continuation line still belongs to its chain
    ("x = 4 + 5\n= 9", [("4 + 5 = 9", True)]),
    # a result written first is judged when nothing but `=` stands between
    ("10 = 7 + 11", [("10 = 7 + 11", False)]),
    ("19 = 18*1 + 2", [("19 = 18*1 + 2", False)]),
    # ... but not through words, a percent or an operation left hanging
    ("1.5 quarts = 4 * 1.5", [("1.5 = 4 * 1.5", None)]),
    # number = number computes nothing, equal or not (21 repeats were 21 "true claims")
    ("1 dollar per lemon = 1 dollar per lemon seedling", [("1 = 1", None)]),
    ("2 bolts of blue fiber = 4 bolts of blue fiber", [("2 = 4", None)]),
    # LaTeX align
    (
        "\\begin{align*}\n3 + 4 &= 8 \\\\\n8 * 2 &= 16\n\\end{align*}",
        [("3 + 4 = 8", False), ("8 * 2 = 16", True)],
    ),
    # percent forms, a float as code prints it, a mixed number
    ("(60 / 300) * 100% = 23.3%", [("(60 / 300) * 100% = 23.3%", False)]),
    ("0.1 + 0.2 = 0.30000000000000004", [("0.1 + 0.2 = 0.30000000000000004", True)]),
    ("10 / 3 = 3.3333333333333335", [("10 / 3 = 3.3333333333333335", True)]),
    ("1 and 1/4 cups = 5/4", []),
    ("x = 4 and 66 + 5 = 71", [("66 + 5 = 71", True)]),
]


@pytest.mark.parametrize(("text", "claims"), CLAIMS)
def test_claims_read_from_model_text(text, claims):
    assert [(c["claim"], c["holds"]) for c in read_claims(text)] == claims


# GSM8K test solutions (human, right answers) and SmolLM2 replies that write algebra
ALGEBRA = [
    (
        "Let x be the number of books that Sally has\n\nJaney has 3+2x books\n\n3+2x=21\n\n"
        "2x=18\n\nx=9",
        None,
    ),
    ("Let x be Colin's age now.\n\n(x+7)*5=(x+25)*3\n\n5*x+35=3*x+75\n\n2*x=40\n\nx=20", None),
    (
        "Let X be the original price of the book. The discounted price is X - X*25% = $19.50."
        "\n\nCombining like terms, we get .75X = $19.50\n\nDividing both sides by .75, we get "
        "X = $26.",
        None,
    ),
    ("Total:x+2x+(1/2)x=105\n\n(7/2)x=105\n\nx=105(2/7)=30 players", None),
    # SmolLM2: `5x = -14` is false at the x it states
    ("1. 5x - 24 = -14\n2. 5x = -14\n3. x = 2", "false_step"),
    # the assignment restated is no claim (SmolLM2: `x = 9`, then `The final answer is 9.`)
    ("x = 9\nx = 9", "no_claims"),
    # algebra that states no value is not checked
    ("x + 13 = 5x + 25\nSolve the equation: x + 13 = 5x + 25", "no_claims"),
]


@pytest.mark.parametrize(("thought", "reason"), ALGEBRA)
def test_algebra_checked_at_the_stated_value(thought, reason):
    assert steps_filter(pl.DataFrame({"thought": [thought]}))["reason"].to_list() == [reason]


def test_assignment_and_substitution():
    # a chain from the letter to one number assigns it (its links are judged as claims)
    assert solved_value("x + 25 + x + 12 + x = 85\n\n3x = 48\n\nx = 48 / 3 = 16") == ("x", 16)
    assert solved_value("2g = 10.\n\ng = 5\n\ns = 20 - 5 = 15") == ("g", 5)
    assert at_solution("2x = 18", "x", 9) == "2*(9) = 18"
    assert at_solution("The fee is 350 x 5/100 = 17.5", "x", 9) is None  # x multiplies
