"""The answer policy (generators/verify/answer.py): a regression table of (gold, prediction,
verdict) rows for approximate decimals, the number forms people write, the empty set,
inequalities as intervals, Countdown's chains, and the option's way from a recipe.

Rows with `A` are checked with `approximate=True` (recipe: `{answer: {approximate: true}}`),
the others with the default. Each row once in-process and once through the checker pool.
"""

from __future__ import annotations

import polars as pl
import pytest
from reasonfactory.filters.answer import AnswerOptions, answer_filter
from reasonfactory.filters.pipeline import filter_options, parse_filter_spec
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.answer_pool import PoolOptions, check_answers
from reasonfactory.generators.verify.countdown import check_countdown

C, W = Outcome.CORRECT, Outcome.WRONG
A = "approximate"

TABLE = [
    # a decimal never stands for an exact gold with no finite decimal form, whatever its size
    ("\\sqrt{2}", "1.414214", W),
    ("\\sqrt{2}", "1.41421356237", W),
    ("\\sqrt{2}", "1.4142135623730951", W),
    ("\\pi", "3.141593", W),
    ("\\pi", "3.14", W),
    ("2\\pi", "6.283185", W),
    ("100\\sqrt{2}", "141.421356", W),
    ("10^6\\sqrt{2}", "1414213.562373", W),
    ("\\frac{\\sqrt{3}}{2}", "0.866025", W),
    ("\\frac{1}{3}", "0.333333", W),
    ("\\frac{1}{3}", "0.3333333333", W),
    ("\\frac{2}{3}", "0.666667", W),
    ("\\frac{1}{7}", "0.142857", W),
    ("\\frac{1000}{3}", "333.333333", W),
    ("e", "2.718282", W),
    ("\\sqrt{5}-1", "1.236068", W),
    ("\\log_2 3", "1.584963", W),
    # ... unless the recipe allows it: then the decimal must be the gold rounded or cut
    ("\\sqrt{2}", "1.414214", C, A),
    ("\\sqrt{2}", "1.41", C, A),
    ("\\sqrt{2}", "1.414", C, A),
    ("\\sqrt{2}", "1.42", W, A),
    ("\\sqrt{2}", "1.5", W, A),
    ("\\pi", "3.14", C, A),
    ("\\pi", "3.1416", C, A),
    ("\\pi", "3.15", W, A),
    ("\\pi", "3.1", C, A),
    ("2\\pi", "6.28", C, A),
    ("100\\sqrt{2}", "141.42", C, A),
    ("100\\sqrt{2}", "141.43", W, A),
    ("\\frac{1}{3}", "0.333", C, A),
    ("\\frac{1}{3}", "0.33", C, A),
    ("\\frac{1}{3}", "0.34", W, A),
    ("\\frac{2}{3}", "0.67", C, A),
    ("\\frac{2}{3}", "0.66", C, A),
    ("\\frac{2}{3}", "0.68", W, A),
    ("\\frac{\\sqrt{3}}{2}", "0.866", C, A),
    ("\\frac{\\sqrt{3}}{2}", "0.87", C, A),
    ("\\frac{\\sqrt{3}}{2}", "0.88", W, A),
    ("-\\sqrt{2}", "-1.414", C, A),
    ("-\\sqrt{2}", "1.414", W, A),
    ("e", "2.718", C, A),
    # exact decimals are not approximations: the policy does not touch them
    ("\\frac{1}{2}", "0.5", C),
    ("\\frac{1}{4}", "0.25", C),
    ("\\frac{3}{8}", "0.375", C),
    ("\\frac{3}{8}", "0.38", W),
    ("2.5", "2.50", C),
    ("2.5", "\\frac{5}{2}", C),
    ("0.125", "\\frac{1}{8}", C),
    ("\\frac{1}{2}", "0.5", C, A),
    ("\\frac{3}{8}", "0.38", W, A),
    ("18", "18.0", C),
    ("18", "18.00", C, A),
    ("18", "18.4", W, A),
    # thousands grouped the ways people write them
    ("1000", "1\\,000", C),
    ("1\\,000", "1000", C),
    ("1000000", "1\\,000\\,000", C),
    ("1000000", "1{,}000{,}000", C),
    ("729000", "729,\\!000", C),
    ("12345.5", "12,345.5", C),
    ("1000", "1,000", C),
    ("1000", "1\\,001", W),
    ("1000", "10\\,000", W),
    # scientific notation
    ("6.02 \\times 10^{23}", "6.02e23", C),
    ("6.02e23", "6.02 \\times 10^{23}", C),
    ("6.02 \\times 10^{23}", "6.02E+23", C),
    ("6.02 \\times 10^{23}", "602000000000000000000000", C),
    ("6.02 \\times 10^{23}", "6.03e23", W),
    ("6.02 \\times 10^{23}", "6.02e22", W),
    ("3 \\times 10^{-4}", "0.0003", C),
    ("3 \\times 10^{-4}", "3e-4", C),
    ("3 \\times 10^{-4}", "3e-5", W),
    ("1.5 \\cdot 10^{3}", "1500", C),
    ("1.5 \\cdot 10^3", "1,500", C),
    # the empty set
    ("\\emptyset", "\\varnothing", C),
    ("\\varnothing", "\\emptyset", C),
    ("\\emptyset", "\\{\\}", C),
    ("\\emptyset", "∅", C),
    ("\\emptyset", "\\{0\\}", W),
    ("\\emptyset", "0", W),
    ("\\{1\\}", "\\emptyset", W),
    # repeating decimals
    ("\\frac{1}{3}", "0.\\overline{3}", C),
    ("\\frac{1}{6}", "0.1\\overline{6}", C),
    ("\\frac{1}{7}", "0.\\overline{142857}", C),
    ("\\frac{31}{11111}", "0.\\overline{00279}", C),
    ("\\frac{1}{3}", "0.(3)", C),
    ("\\frac{1}{6}", "0.1(6)", C),
    ("\\frac{1}{3}", "0.333...", C),
    ("\\frac{1}{6}", "0.1666...", C),
    ("\\frac{2}{3}", "0.666\\ldots", C),
    ("\\frac{1}{3}", "0.\\overline{6}", W),
    ("\\frac{1}{6}", "0.\\overline{16}", W),
    ("0.\\overline{3}", "\\frac{1}{3}", C),
    ("\\frac{4}{3}", "1.\\overline{3}", C),
    ("-\\frac{1}{3}", "-0.\\overline{3}", C),
    # an inequality is the interval it describes
    ("(-\\infty, 3)", "x < 3", C),
    ("(-\\infty, 3]", "x \\le 3", C),
    ("(-\\infty, 3]", "x \\leq 3", C),
    ("(-\\infty, 3)", "x \\le 3", W),
    ("(3, \\infty)", "x > 3", C),
    ("[3, \\infty)", "x \\ge 3", C),
    ("[3, \\infty)", "x > 3", W),
    ("(3, \\infty)", "3 < x", C),
    ("[2, 5]", "2 \\le x \\le 5", C),
    ("[2, 5)", "2 \\le x < 5", C),
    ("[2, 5]", "2 < x \\le 5", W),
    ("(-2, 7)", "-2 < x < 7", C),
    ("(-\\infty, 1) \\cup (2, \\infty)", "x < 1 \\text{ or } x > 2", C),
    ("(-\\infty, 1) \\cup (2, \\infty)", "x<1 \\text{ or } x>2", C),
    ("(-\\infty, 1] \\cup [2, \\infty)", "x \\le 1 \\text{ or } x \\ge 2", C),
    ("(-\\infty, 1) \\cup (2, \\infty)", "x < 1 \\text{ or } x > 3", W),
    ("\\left(\\frac{1}{2}, \\infty\\right)", "x > \\frac{1}{2}", C),
    ("x < 3", "(-\\infty, 3)", C),
    ("x \\ge 3", "[3, \\infty)", C),
    # forms and traps the policy must not change
    ("\\frac{1}{2}", "\\frac{2}{4}", C),
    ("18", "19", W),
    ("-3", "3", W),
    ("\\sqrt{2}", "\\frac{2}{\\sqrt{2}}", C),
    ("\\sqrt{2}", "\\sqrt{3}", W),
    ("\\pi", "\\frac{22}{7}", W),
    ("10\\%", "10", C),
    ("12.5\\%", "12.5", C),
]


def _row(row):
    gold, pred, expected, *flag = row
    return gold, pred, expected, bool(flag)


ROWS = [_row(r) for r in TABLE]


def test_the_table_is_big_enough():
    assert len(ROWS) >= 120


@pytest.mark.parametrize("gold,pred,expected,approximate", ROWS, ids=[str(r[:2]) for r in ROWS])
def test_policy_in_process(gold, pred, expected, approximate):
    why: list[str] = []
    assert check_answer(gold, pred, approximate=approximate, why=why) is expected, why
    assert why and why[0]  # every verdict says how it was reached


def test_policy_through_the_pool():
    for flag in (False, True):
        rows = [r for r in ROWS if r[3] is flag]
        opts = PoolOptions(timeout_s=10, workers=2, approximate=flag)
        got = check_answers([(g, p) for g, p, _, _ in rows], opts)
        assert got == [e for _, _, e, _ in rows]


def test_the_option_travels_from_a_recipe_spec_to_the_filter():
    [spec] = [parse_filter_spec({"answer": {"approximate": True}})]
    options = filter_options(spec)
    assert isinstance(options, AnswerOptions) and options.pool().approximate is True
    frame = pl.DataFrame(
        {
            "gold": ["\\sqrt{2}", "\\sqrt{2}"],
            "predicted": ["1.414", "1.42"],
            "gold_source": ["problem", "problem"],
        }
    )
    assert answer_filter(frame, options)["ok"].to_list() == [True, False]
    assert answer_filter(frame, {})["ok"].to_list() == [False, False]


COUNTDOWN = [
    ([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52)", True),
    ([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52) = 31", True),
    ([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52) = 33 - 2 = 31", True),
    ([91, 58, 54, 52], 31, "91 - 58 - (54 - 52) = 33 - 2 = 31", True),
    ([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52) = 33 - 2 = 30", False),
    ([91, 58, 54, 52], 31, "(91 - 58) - (54 - 52) = 34 - 2 = 31", False),
    ([91, 58, 54, 52], 31, "91 - 58 = 33 - 2 = 31", False),  # 54 and 52 never used
    ([4, 6], 24, "4 * 6 = 24", True),
    ([4, 6], 24, "4 * 6 = 24 = 24", True),
    ([4, 6], 24, "4 * 6 ==", False),
]


@pytest.mark.parametrize("numbers,target,answer,ok", COUNTDOWN)
def test_countdown_accepts_chained_equalities(numbers, target, answer, ok):
    assert check_countdown(numbers, target, answer) is ok
