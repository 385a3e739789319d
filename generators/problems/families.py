"""Built-in, seeded problem families, and the step plan that solves each problem.

- `arithmetic`: a chain of integer operations, e.g. `Compute (((17 + 5) * 3) - 8) / 2.`;
  difficulty = number of operations (one step each).
- `linear`: one-variable linear equations with an integer, non-zero solution, e.g.
  `Solve for x: 5x - 3 = 2x + 9.`; difficulty 2 (x on one side) or 3 (x on both sides).
- `countdown`: make a target from 4 numbers (3..5 with `difficulty`); see
  `generators.problems.countdown`. It has no step plan: the sim engine does not play it.

A family both makes problems (`make`) and reads them back (`plan`): the step plan is what
the sim engine executes, one equation per step. Each step is `lhs op rhs = result` where
an operand is a literal or the result of an earlier step, so a wrong result written in one
step is carried into the steps that use it, as a model's slip would be.

Not here: loading problems from files (`generators.problems.sources`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from generators.problems.countdown import make_countdown, plan_countdown

Value = Fraction


@dataclass(frozen=True)
class Ref:
    """The result of step `index` (0-based) as it was written."""

    index: int


Operand = Fraction | Ref

OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


@dataclass(frozen=True)
class StepPlan:
    op: str
    lhs: Operand
    rhs: Operand
    # text of the step from (lhs, rhs, result) as written, and the values written so far
    render: Callable[[str, str, str, list[Fraction]], str]


@dataclass(frozen=True)
class Problem:
    question: str
    gold: str
    family: str
    difficulty: int


def fmt(v: Fraction) -> str:
    """A value as a step writes it: `17`, `-3`, `53/4`."""
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def fmt_operand(v: Fraction) -> str:
    """An operand inside an equation: negatives and fractions in parentheses."""
    s = fmt(v)
    return f"({s})" if v < 0 or v.denominator != 1 else s


def _signed(v: Fraction) -> str:
    return f"- {fmt(-v)}" if v < 0 else f"+ {fmt(v)}"


# -- arithmetic ------------------------------------------------------------------------------

_ARITH_Q = re.compile(r"Compute ([0-9()+\-*/ ]+)\.")
_ARITH_TOKEN = re.compile(r"\d+|[-+*/]")


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


def plan_arithmetic(question: str) -> list[StepPlan] | None:
    m = _ARITH_Q.search(question)
    if not m:
        return None
    tokens = _ARITH_TOKEN.findall(m.group(1))
    if len(tokens) < 3 or len(tokens) % 2 == 0:
        return None
    steps: list[StepPlan] = []
    lhs: Operand = Fraction(int(tokens[0]))
    for k in range(1, len(tokens), 2):
        op, rhs = tokens[k], Fraction(int(tokens[k + 1]))
        steps.append(StepPlan(op, lhs, rhs, _render_arith(op)))
        lhs = Ref(len(steps) - 1)
    return steps


def _render_arith(op: str):
    return lambda a, b, r, _values: f"{a} {op} {b} = {r}."


# -- linear ----------------------------------------------------------------------------------

_LINEAR_Q = re.compile(r"Solve for x: (-?\d+)x ([+-]) (\d+) = (?:(-?\d+)x ([+-]) (\d+)|(-?\d+))\.")


def make_linear(rng: random.Random, ops: int) -> Problem:
    x = rng.choice([v for v in range(-12, 13) if v != 0])
    a = rng.choice([v for v in range(-9, 10) if v not in (0, 1)])
    b = rng.choice([v for v in range(-30, 31) if v != 0])
    if ops >= 3:
        c = rng.choice([v for v in range(-9, 10) if v not in (0, a)])
        d = (a - c) * x + b
        question = f"Solve for x: {a}x {_signed(Fraction(b))} = {c}x {_signed(Fraction(d))}."
    else:
        c = 0
        question = f"Solve for x: {a}x {_signed(Fraction(b))} = {a * x + b}."
    return Problem(question, str(x), "linear", 3 if c else 2)


def plan_linear(question: str) -> list[StepPlan] | None:
    m = _LINEAR_Q.search(question)
    if not m:
        return None
    a = Fraction(int(m.group(1)))
    b = Fraction(int(m.group(3))) * (1 if m.group(2) == "+" else -1)
    if m.group(4) is not None:
        c = Fraction(int(m.group(4)))
        d = Fraction(int(m.group(6))) * (1 if m.group(5) == "+" else -1)
        return [
            StepPlan(
                "-",
                a,
                c,
                lambda lhs, r, res, _v: (
                    f"Collect the x terms on the left: {lhs} - {r} = {res}, "
                    f"so {res}x {_signed(b)} = {fmt(d)}."
                ),
            ),
            StepPlan(
                "-",
                d,
                b,
                lambda lhs, r, res, v: (
                    f"Move the constant to the right: {lhs} - {r} = {res}, so {fmt(v[0])}x = {res}."
                ),
            ),
            StepPlan(
                "/",
                Ref(1),
                Ref(0),
                lambda lhs, r, res, _v: (
                    f"Divide both sides by {r}: {lhs} / {r} = {res}, so x = {res}."
                ),
            ),
        ]
    d = Fraction(int(m.group(7)))
    return [
        StepPlan(
            "-",
            d,
            b,
            lambda lhs, r, res, _v: (
                f"Move the constant to the right: {lhs} - {r} = {res}, so {fmt(a)}x = {res}."
            ),
        ),
        StepPlan(
            "/",
            Ref(0),
            a,
            lambda lhs, r, res, _v: f"Divide both sides by {r}: {lhs} / {r} = {res}, so x = {res}.",
        ),
    ]


# -- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[random.Random, int], Problem]
    plan: Callable[[str], list[StepPlan] | None]
    difficulty: tuple[int, int]  # the range `make` accepts
    default_difficulty: tuple[int, int] | None = None  # when the recipe names none


FAMILIES: dict[str, Family] = {
    "arithmetic": Family("arithmetic", make_arithmetic, plan_arithmetic, (1, 12)),
    "linear": Family("linear", make_linear, plan_linear, (2, 3)),
    "countdown": Family("countdown", make_countdown, plan_countdown, (3, 5), (4, 4)),
}


def make_problems(
    family: str, count: int, seed: int, difficulty: tuple[int, int] | None = None
) -> list[Problem]:
    """`count` distinct problems of a family, the same for the same seed.

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
            raise ValueError(f"builtin:{family} cannot make {count} distinct problems")
        p = fam.make(rng, rng.randint(lo, hi))
        if p.question not in seen:
            seen.add(p.question)
            out.append(p)
    return out


def plan_problem(question: str) -> tuple[str, list[StepPlan]] | None:
    """The family and step plan of a built-in problem's text, or None if it is not one."""
    for fam in FAMILIES.values():
        plan = fam.plan(question)
        if plan:
            return fam.name, plan
    return None
