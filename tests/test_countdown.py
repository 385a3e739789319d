"""builtin:countdown: seeded, solvable problems; the Countdown answer rule, applied by the
answer filter instead of equality with the target; the strict parser refuses non-arithmetic."""

from __future__ import annotations

import json
import threading
from collections import Counter
from itertools import permutations, product

import polars as pl
import pytest
from reasonfactory.filters.answer import answer_filter
from reasonfactory.generators.problems.countdown import (
    countdown_checker,
    countdown_question,
    expression_from_moves,
    parse_countdown,
    solve_countdown,
)
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.checkers import attach_checkers, check
from reasonfactory.generators.verify.countdown import check_countdown


def _brute_force_solvable(numbers, target) -> bool:
    """A second solver written differently: every order, every operator, left-to-right
    and pairwise bracketings (all shapes for 4 numbers), exact fractions."""
    from fractions import Fraction

    ops = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else None,
    }

    def values(nums):
        if len(nums) == 1:
            return {nums[0]}
        out = set()
        for i in range(1, len(nums)):
            for a, b in product(values(nums[:i]), values(nums[i:])):
                for f in ops.values():
                    v = f(a, b)
                    if v is not None:
                        out.add(v)
        return out

    return any(Fraction(target) in values([Fraction(n) for n in p]) for p in permutations(numbers))


def test_problems_are_seeded_in_range_and_solvable():
    a = load_problems("builtin:countdown", limit=40, seed=3)
    b = load_problems("builtin:countdown", limit=40, seed=3)
    assert a.equals(b)
    assert not a.equals(load_problems("builtin:countdown", limit=40, seed=4))
    for q, gold in zip(a["question"], a["gold"], strict=True):
        numbers, target = parse_countdown(q)
        assert len(numbers) == 4 and all(1 <= n <= 99 for n in numbers)
        assert 10 <= target <= 100 and gold == str(target)
        moves = solve_countdown(numbers, target)
        assert moves is not None
        assert check_countdown(numbers, target, expression_from_moves(numbers, moves))
        assert _brute_force_solvable(numbers, target)


def test_difficulty_is_the_count_of_numbers():
    three = load_problems("builtin:countdown", limit=5, difficulty=(3, 3))
    five = load_problems("builtin:countdown", limit=5, difficulty=(5, 5))
    assert {len(parse_countdown(q)[0]) for q in three["question"]} == {3}
    assert {len(parse_countdown(q)[0]) for q in five["question"]} == {5}


def test_solver_agrees_with_brute_force_including_unsolvable_draws():
    import random

    rng = random.Random(0)
    seen = Counter()
    for _ in range(150):
        numbers = [rng.randint(1, 99) for _ in range(3)]
        target = rng.randint(10, 100)
        found = solve_countdown(numbers, target) is not None
        seen[found] += 1
        # Countdown moves never go negative or fractional; the brute force may, so it can
        # only find more, and a move solution is always a brute-force solution.
        if found:
            assert _brute_force_solvable(numbers, target)
    assert seen[True] and seen[False]


@pytest.mark.parametrize(
    "numbers,target,answer,expected",
    [
        ((91, 58, 54, 52), 31, "(91 - 58) - (54 - 52)", True),
        ((91, 58, 54, 52), 31, "(91-58)-(54-52) = 31", True),
        ((91, 58, 54, 52), 31, "(91 - 58) - (54 - 52) = 30", False),  # says another target
        ((4, 6), 24, "4 \\times 6", True),
        ((4, 6), 24, "$6 \\cdot 4$", True),
        ((4, 6), 24, "24", False),  # the target itself is not an expression of the numbers
        ((4, 6), 24, "4 * 6 * 1", False),  # a number not given
        ((4, 6, 6), 24, "4 * 6", False),  # a number not used
        ((4, 4), 8, "4 + 4", True),  # duplicates used once each
        ((4, 4), 8, "4 + 4 + 4 - 4", False),
        ((3, 5, 8), 1, "8 / (5 + 3)", True),
        ((3, 5, 8), 1, "(8 / 5 + 3) - 3", False),
        ((2, 3), 1, "-2 + 3", False),  # no unary minus
        ((2, 3), 1, "3 - 2", True),
        ((2, 3), 1, "3 / (2 - 2)", False),
        ((2, 3), 5, "2.0 + 3", False),  # integers only
        ((2, 3), 5, "__import__('os').system('true')", False),
        ((2, 3), 5, "2 ** 3", False),
        ((2, 3), 5, "(" * 30 + "2 + 3" + ")" * 30, False),  # too deep
        ((2, 3), 5, "", False),
        ((2, 3), 5, None, False),
    ],
)
def test_countdown_answer_rule(numbers, target, answer, expected):
    assert check_countdown(numbers, target, answer) is expected


def test_checker_spec_is_stored_on_the_problem_row(tmp_path):
    q = countdown_question([12, 45, 3, 7], 24)
    assert countdown_checker(q) == "countdown:12,45,3,7"
    assert countdown_checker("Compute (17 + 5) * 3.") is None
    # at load, built-in or from a file, the spec lands in the row's meta
    built = load_problems("builtin:countdown", limit=2)
    assert all(json.loads(m)["checker"].startswith("countdown:") for m in built["meta"])
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"question": q, "answer": "24"})
        + "\n"
        + json.dumps({"question": "Compute 2 + 3.", "answer": "5"})
        + "\n"
    )
    metas = [json.loads(m) for m in load_problems(str(path))["meta"]]
    assert metas[0]["checker"] == "countdown:12,45,3,7" and metas[0]["family"] == "countdown"
    assert "checker" not in metas[1]
    assert check("countdown:12,45,3,7", "24", "(45 - 12) - (3 + 7) + 1") is False
    assert check("countdown:12,45,3,7", "24", "12 * (45 / (3 * 7))") is False
    assert check("countdown:4,6", "24", "6 * 4") is True


def _traces(rows):
    return pl.DataFrame(
        rows, schema=["problem_id", "gold", "predicted", "gold_source"], orient="row"
    ).with_columns(pl.col("gold_source").cast(pl.String))


def test_answer_filter_uses_the_countdown_rule_and_math_verify_otherwise():
    q = countdown_question([4, 6, 2], 26)
    problems = pl.DataFrame(
        {
            "problem_id": ["c", "a"],
            "question": [q, "Compute 2 + 3."],
            "gold": ["26", "5"],
            "meta": [json.dumps({"checker": countdown_checker(q)}), "{}"],
        }
    )
    traces = _traces(
        [
            ("c", "26", "4 * 6 + 2", "problem"),  # right expression
            ("c", "26", "26", "problem"),  # equal to the gold, not an answer here
            ("c", "26", "4 * 6 - 2", "problem"),
            ("a", "5", "5", "problem"),
            ("a", "5", "\\frac{10}{2}", "problem"),
        ]
    )
    with_checkers = attach_checkers(traces, problems)
    assert with_checkers["checker"].to_list() == ["countdown:4,6,2"] * 3 + [None, None]
    verdict = answer_filter(with_checkers)
    assert verdict["ok"].to_list() == [True, False, False, True, True]
    assert verdict["reason"].to_list()[:3] == [None, "wrong_answer", "wrong_answer"]


def test_countdown_check_from_a_worker_thread():
    out = {}
    t = threading.Thread(target=lambda: out.update(ok=check("countdown:4,6", "24", "4 * 6")))
    t.start()
    t.join()
    assert out == {"ok": True}
