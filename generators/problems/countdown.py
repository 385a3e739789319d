"""The Countdown game (`builtin:countdown`): make a target from a few numbers.

As in Stream of Search (Gandhi et al. 2024, `src/countdown.py`): the target is drawn from
10..100, the numbers uniformly from 1..99, and the numbers are redrawn until an exhaustive
search finds a solution. A move combines two numbers into one: `a+b`, `a*b`, the larger
minus the smaller, or an exact division (`combine`). The default is 4 numbers; 3..5 are
allowed (`difficulty` = how many numbers). The paper's 10% held-out targets are not held
out here: pick targets with your own split if you need one.

A problem's gold answer is the target. An answer is right when it is an expression that
uses each given number exactly once and evaluates to the target: that rule is
`verify/countdown.py`. `countdown_checker` names it for a problem's row (`meta.checker`).

Not here: the search strategies that write Stream-of-Search traces (`methods/sos.py`).
"""

from __future__ import annotations

import random
import re
from itertools import combinations

from reasonfactory.generators.problems.problem import Problem

TARGETS = (10, 100)
NUMBERS = (1, 99)

_QUESTION = re.compile(
    r"Use the numbers ((?:\d+, )*\d+) and (\d+) to make (\d+), "
    r"using each number exactly once with \+, -, \* and /\."
)


def countdown_question(numbers: list[int] | tuple[int, ...], target: int) -> str:
    """The problem text.

    >>> countdown_question([12, 45, 3, 7], 24)
    'Use the numbers 12, 45, 3 and 7 to make 24, using each number exactly once with +, -, * and /.'
    """
    head = ", ".join(str(n) for n in numbers[:-1])
    return (
        f"Use the numbers {head} and {numbers[-1]} to make {target}, "
        "using each number exactly once with +, -, * and /."
    )


def parse_countdown(question: str) -> tuple[tuple[int, ...], int] | None:
    """(numbers, target) of a Countdown problem's text, or None if it is not one.

    >>> parse_countdown(countdown_question([12, 45, 3, 7], 24))
    ((12, 45, 3, 7), 24)
    """
    m = _QUESTION.search(question)
    if not m:
        return None
    numbers = tuple(int(n) for n in m.group(1).split(", ")) + (int(m.group(2)),)
    return numbers, int(m.group(3))


def combine(a: int, b: int) -> list[tuple[int, str]]:
    """The moves on two numbers, in the order the SoS generator tries them.

    >>> combine(3, 12)
    [(15, '3+12=15'), (36, '3*12=36'), (9, '12-3=9'), (4, '12/3=4')]
    """
    moves = [(a + b, f"{a}+{b}={a + b}"), (a * b, f"{a}*{b}={a * b}")]
    big, small = (b, a) if a <= b else (a, b)
    moves.append((big - small, f"{big}-{small}={big - small}"))
    if small != 0 and big % small == 0:
        moves.append((big // small, f"{big}/{small}={big // small}"))
    return moves


def solve_countdown(numbers: list[int] | tuple[int, ...], target: int) -> list[str] | None:
    """The first solution an exhaustive depth-first search finds (its moves), or None.

    >>> solve_countdown([4, 6], 24)
    ['4*6=24']
    """
    nums = list(numbers)
    if len(nums) == 1:
        return [] if nums[0] == target else None
    if len(nums) == 2:
        # The last move is checked without building lists: it is most of the work, and an
        # unsolvable draw (redrawn) visits every leaf.
        a, b = nums
        big, small = (b, a) if a <= b else (a, b)
        if (
            a + b == target
            or a * b == target
            or big - small == target
            or (small != 0 and big % small == 0 and big // small == target)
        ):
            return [next(move for value, move in combine(a, b) if value == target)]
        return None
    for i, j in combinations(range(len(nums)), 2):
        rest = [nums[k] for k in range(len(nums)) if k not in (i, j)]
        for value, move in combine(nums[i], nums[j]):
            found = solve_countdown([*rest, value], target)
            if found is not None:
                return [move, *found]
    return None


def expression_from_moves(numbers: list[int] | tuple[int, ...], moves: list[str]) -> str:
    """One expression for a sequence of moves, e.g. `(91 - 58) - (54 - 52)`.

    >>> expression_from_moves([91, 58, 54, 52], ["91-58=33", "54-52=2", "33-2=31"])
    '(91 - 58) - (54 - 52)'
    """
    pool: list[tuple[int, str, bool]] = [(n, str(n), False) for n in numbers]
    for move in moves:
        m = re.fullmatch(r"(\d+)([-+*/])(\d+)=(\d+)", move)
        if not m:
            raise ValueError(f"not a Countdown move: {move!r}")
        a, op, b, result = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        ea = _take(pool, a, move)
        eb = _take(pool, b, move)
        pool.append((result, f"{_wrap(ea)} {op} {_wrap(eb)}", True))
    if len(pool) != 1:
        raise ValueError(f"moves {moves} leave {len(pool)} numbers, not one")
    return pool[0][1]


def _take(pool: list[tuple[int, str, bool]], value: int, move: str) -> tuple[str, bool]:
    for k, (v, expr, compound) in enumerate(pool):
        if v == value:
            del pool[k]
            return expr, compound
    raise ValueError(f"move {move!r} uses {value}, which is not available")


def _wrap(item: tuple[str, bool]) -> str:
    expr, compound = item
    return f"({expr})" if compound else expr


def make_countdown(rng: random.Random, count: int):
    """One solvable problem with `count` numbers (the SoS generator's procedure)."""
    target = rng.randint(*TARGETS)
    while True:
        numbers = [rng.randint(*NUMBERS) for _ in range(count)]
        if solve_countdown(numbers, target) is not None:
            return Problem(countdown_question(numbers, target), str(target), "countdown", count)


def countdown_checker(question: str | None) -> str | None:
    """The checker spec of a Countdown problem's text (`countdown:12,45,3,7`), or None for a
    problem whose answer is compared with its gold. Stored on the problem row at load.

    >>> countdown_checker(countdown_question([12, 45, 3, 7], 24))
    'countdown:12,45,3,7'
    >>> countdown_checker("Compute 2 + 3.") is None
    True
    """
    found = parse_countdown(question or "")
    if found is None:
        return None
    return "countdown:" + ",".join(str(n) for n in found[0])
