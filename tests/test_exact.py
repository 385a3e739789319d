"""The one arithmetic reader (`generators/verify/exact.py`): claims, answers, Countdown, error
injection, code output and the sim all read numbers and arithmetic the same way.

Before it there were three readers that disagreed; each row here is a place where they did,
decided on real text where it occurs (GSM8K's en dash as a minus sign; MATH-500's
`10,\\!080` and `\\frac9{19}` answers), else on what the notation means.
"""

from __future__ import annotations

from fractions import Fraction
from unittest.mock import patch

import pytest
import reasonfactory.generators.verify.answer as answer
from reasonfactory.generators.verify.chains import find_claims
from reasonfactory.generators.verify.exact import evaluate, parse_arith, plain_number, read_number
from reasonfactory.generators.verify.judge import claim_holds
from reasonfactory.generators.verify.sandbox import ExecutionResult
from reasonfactory.generators.verify.steps import check_code, check_equations

# (a number as written, its value): the answer checker and the claim reader read it alike
FORMS = [
    ("1{,}000", Fraction(1000)),
    ("729,\\!000", Fraction(729000)),  # MATH-500
    ("10,\\!080", Fraction(10080)),  # a MATH-500 gold answer
    ("1\\,000", Fraction(1000)),
    ("0.\\overline{3}", Fraction(1, 3)),
    ("0.333...", Fraction(1, 3)),  # GSM8K writes `33.333...%`
    ("0.1(6)", Fraction(1, 6)),
    ("6.02e23", Fraction(602) * 10**21),
    ("½", Fraction(1, 2)),
]


@pytest.mark.parametrize("written,value", FORMS, ids=[f[0] for f in FORMS])
def test_answers_and_claims_read_a_number_alike(written, value):
    assert read_number(written).value == value
    assert claim_holds(f"{written} * 2 = {value * 2}") is True
    assert claim_holds(f"{written} * 2 = {value * 2 + 1}") is False


@pytest.mark.parametrize(
    "line",
    [
        "So each gets 0.333... * 3 = 1 pie.",  # once 0.999 = 1: a true step judged false
        "That is 0.1(6) * 6 = 1 cup.",  # once read as 0.1 * 6 * 6
        "She has 1{,}000 - 1 = 999 coins.",  # once nothing checkable
    ],
)
def test_true_steps_in_these_forms_hold(line):
    assert check_equations(line).ok is True


def test_the_en_dash_is_a_minus_sign_for_every_reader():
    # 45 GSM8K test lines write `–` for minus (`22 – 7 = 15`); claims always read it so, and
    # now the tree error injection rewrites does too
    [claim] = find_claims("He has 22 – 7 = 15 apples left.")
    assert claim_holds(claim) is True
    assert evaluate(claim.node) == 15 and evaluate(parse_arith("30 – 7 – 14")) == 9


def test_math500_answers_are_compared_without_math_verify():
    with patch.object(answer, "parse_answer", side_effect=AssertionError("parsed")):
        assert answer.check_answer("10080", "10,\\!080") is answer.Outcome.CORRECT
        assert answer.check_answer("\\frac{9}{19}", "\\frac9{19}") is answer.Outcome.CORRECT
        assert answer.check_answer("10080", "10,\\!081") is answer.Outcome.WRONG


def test_a_code_step_printing_a_grouped_number_is_compared():
    printed = ExecutionResult(ok=True, stdout="1,000\n", stderr="", exit_code=0)
    assert check_code("So 10 * 100 = 999 coins.", printed).ok is False
    assert check_code("So 10 * 100 = 1000 coins.", printed).ok is True


def test_what_no_reader_accepts():
    for text in ("2x + 1", "1/0", "3/-4", "50%", "10^{3}", "(5)", "", None, "9" * 41):
        assert read_number(text) is None, text
    assert plain_number("50\\%") == 50 and plain_number("$1,500") == 1500
    # scientific notation up to the answer checker's old cap (10^400), not past it
    assert read_number("1 \\times 10^{400}").value == 10**400
    assert read_number("1e401") is None and read_number("1e99999999") is None
    assert parse_arith("2.5 + 1", decimals=False) is None
    assert parse_arith("{2 + 1}") is None and parse_arith("2(3)") is None  # strict rules
