"""Built-in, seeded problem families: each makes problems with a known gold answer.

- `arithmetic`: a chain of integer operations, e.g. `Compute (((17 + 5) * 3) - 8) / 2.`;
  difficulty = number of operations (one step each).
- `linear`: one-variable linear equations with an integer, non-zero solution, e.g.
  `Solve for x: 5x - 3 = 2x + 9.`; difficulty 2 (x on one side) or 3 (x on both sides).
- `countdown`: make a target from 4 numbers (3..5 with `difficulty`); see
  `reasonfactory.generators.problems.countdown`. The sim engine does not play it.
- `code`: small stdio programming problems with ten tests each (difficulty 1..3: input
  sizes); see `reasonfactory.generators.problems.code_family`.

Not here: loading problems from files (`sources.py`); reading a problem back into the steps
that solve it, which only the sim engine does (`engines/sim_plans.py`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.problems.code_family import make_code_problem
from reasonfactory.generators.problems.countdown import make_countdown
from reasonfactory.generators.problems.problem import Problem
from reasonfactory.warehouse.errors import UserError

Value = Fraction


OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


def fmt(v: Fraction) -> str:
    """A value as a step writes it: `17`, `-3`, `53/4`."""
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def fmt_operand(v: Fraction) -> str:
    """An operand inside an equation: negatives and fractions in parentheses."""
    s = fmt(v)
    return f"({s})" if v < 0 or v.denominator != 1 else s


def signed(v: Fraction) -> str:
    return f"- {fmt(-v)}" if v < 0 else f"+ {fmt(v)}"


# -- arithmetic ------------------------------------------------------------------------------

_ARITH_Q = re.compile(r"Compute ([0-9()+\-*/ ]+)\.")


def make_arithmetic(rng: random.Random, ops: int) -> Problem:
    value = rng.randint(2, 50)
    expr = str(value)
    for i in range(ops):
        choices = ["+", "-", "*"] + (["/"] if _divisors(value) else [])
        if abs(value) > 400:
            choices = [c for c in choices if c != "*"]
        op = rng.choice(choices)
        if op == "+":
            operand = rng.randint(2, 50)
        elif op == "-":
            operand = rng.randint(1, 50)
        elif op == "*":
            operand = rng.randint(2, 9)
        else:
            operand = rng.choice(_divisors(value))
        value = int(OPS[op](Fraction(value), Fraction(operand)))
        expr = f"({expr} {op} {operand})" if i < ops - 1 else f"{expr} {op} {operand}"
    return Problem(f"Compute {expr}.", str(value), "arithmetic", ops)


def _divisors(value: int) -> list[int]:
    return [d for d in range(2, 13) if value != 0 and value % d == 0 and abs(value) // d > 1]


# -- linear ----------------------------------------------------------------------------------

_LINEAR_Q = re.compile(r"Solve for x: (-?\d+)x ([+-]) (\d+) = (?:(-?\d+)x ([+-]) (\d+)|(-?\d+))\.")


def make_linear(rng: random.Random, ops: int) -> Problem:
    x = rng.choice([v for v in range(-12, 13) if v != 0])
    a = rng.choice([v for v in range(-9, 10) if v not in (0, 1)])
    b = rng.choice([v for v in range(-30, 31) if v != 0])
    if ops >= 3:
        c = rng.choice([v for v in range(-9, 10) if v not in (0, a)])
        d = (a - c) * x + b
        question = f"Solve for x: {a}x {signed(Fraction(b))} = {c}x {signed(Fraction(d))}."
    else:
        c = 0
        question = f"Solve for x: {a}x {signed(Fraction(b))} = {a * x + b}."
    return Problem(question, str(x), "linear", 3 if c else 2)


# -- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[random.Random, int], Problem]
    difficulty: tuple[int, int]  # the range `make` accepts
    default_difficulty: tuple[int, int] | None = None  # when the recipe names none


FAMILIES: dict[str, Family] = {
    "arithmetic": Family("arithmetic", make_arithmetic, (1, 12)),
    "linear": Family("linear", make_linear, (2, 3)),
    "countdown": Family("countdown", make_countdown, (3, 5), (4, 4)),
    "code": Family("code", make_code_problem, (1, 3), (1, 2)),
}


class FamilyTooSmall(UserError, ValueError):
    """More problems asked of a family than it has distinct questions (a one-line error in
    the CLI, not a traceback)."""


def make_problems(
    family: str,
    count: int,
    seed: int,
    difficulty: tuple[int, int] | None = None,
    key: Callable[[str], str] | None = None,
) -> list[Problem]:
    """`count` distinct problems of a family, the same for the same seed; distinct by
    `key(question)` when given (the loop: up to commutativity, `pools.canonical_question`).

    >>> [p.gold for p in make_problems("arithmetic", 2, seed=0)] == \\
    ...     [p.gold for p in make_problems("arithmetic", 2, seed=0)]
    True
    """
    fam = FAMILIES[family]
    lo, hi = difficulty or fam.default_difficulty or fam.difficulty
    lo, hi = max(lo, fam.difficulty[0]), min(hi, fam.difficulty[1])
    rng = random.Random(f"{family}:{seed}")
    seen: set[str] = set()
    out: list[Problem] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise FamilyTooSmall(
                f"builtin:{family} cannot make {count} distinct problems (it made "
                f"{len(out)}); ask for fewer with `limit`"
            )
        p = fam.make(rng, rng.randint(lo, hi))
        k = key(p.question) if key else p.question
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out
