"""The sim engine's step plans: a built-in problem's text read back into the steps that solve it.

A plan is what the sim executes, one equation per step; an arithmetic problem's expression is
read by the one arithmetic reader (`generators.verify.exact`). Each step is `lhs op rhs = result`
where an operand is a literal or the result of an earlier step, so a wrong result written in
one step is carried into the steps that use it, as a model's slip would be. Only the sim
reads problems this way; the families that make the problems are in `problems/families.py`.
Countdown has no plan: the sim does not play it (method `sos` needs no engine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.problems.families import _ARITH_Q, _LINEAR_Q, fmt, signed
from reasonfactory.generators.verify.exact import BinOp, parse_arith, unwrap


@dataclass(frozen=True)
class Ref:
    """The result of step `index` (0-based) as it was written."""

    index: int


Operand = Fraction | Ref


@dataclass(frozen=True)
class StepPlan:
    op: str
    lhs: Operand
    rhs: Operand
    # text of the step from (lhs, rhs, result) as written, and the values written so far
    render: Callable[[str, str, str, list[Fraction]], str]


def plan_arithmetic(question: str) -> list[StepPlan] | None:
    """One step per operation of `Compute ...`, read by the one arithmetic reader (strict
    rules, integers): the innermost operation first, each later step using the results of
    the steps that computed its operands.

    >>> [(s.op, s.lhs, s.rhs) for s in plan_arithmetic("Compute (17 + 5) * 3.")]
    [('+', Fraction(17, 1), Fraction(5, 1)), ('*', Ref(index=0), Fraction(3, 1))]
    """
    m = _ARITH_Q.search(question)
    node = parse_arith(m.group(1), unary_minus=False, decimals=False) if m else None
    steps: list[StepPlan] = []

    def operand(node) -> Operand:
        node = unwrap(node)
        if isinstance(node, BinOp):
            lhs, rhs = operand(node.left), operand(node.right)
            steps.append(StepPlan(node.op, lhs, rhs, _render_arith(node.op)))
            return Ref(len(steps) - 1)
        return node.value

    if node is None or not isinstance(operand(node), Ref):
        return None  # not an expression, or a bare number: nothing to compute
    return steps


def _render_arith(op: str):
    return lambda a, b, r, _values: f"{a} {op} {b} = {r}."


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
                    f"so {res}x {signed(b)} = {fmt(d)}."
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


PLANS: dict[str, Callable[[str], list[StepPlan] | None]] = {
    "arithmetic": plan_arithmetic,
    "linear": plan_linear,
}


def plan_problem(question: str) -> tuple[str, list[StepPlan]] | None:
    """The family and step plan of a built-in problem's text, or None if the sim cannot
    solve it."""
    for name, plan_fn in PLANS.items():
        plan = plan_fn(question)
        if plan:
            return name, plan
    return None


# The sim's Chinese step wording (`language: zh`): the English plans' phrases, in order of
# application, and how a step and the answer are labelled.
ZH_WORDING = (
    ("Collect the x terms on the left: ", "把含 x 的项移到左边："),
    ("Move the constant to the right: ", "把常数项移到右边："),
    ("Divide both sides by ", "两边同时除以 "),
    (", so ", "，所以 "),
)
ZH_STEP = "第 {k} 步：{text}"
ZH_ANSWER = "答案是 \\boxed{{{answer}}}。"


def to_chinese(text: str) -> str:
    """A rendered step in the sim's Chinese wording.

    >>> to_chinese("Divide both sides by 3: 12 / 3 = 4, so x = 4.")
    '两边同时除以 3：12 / 3 = 4，所以 x = 4。'
    >>> to_chinese("17 + 5 = 22.")
    '计算 17 + 5 = 22。'
    """
    out = text
    for en, zh in ZH_WORDING:
        out = out.replace(en, zh)
    if out.startswith("两边同时除以 "):
        head, sep, rest = out.partition(": ")
        out = head + "：" + rest if sep else out
    if out == text:  # a bare calculation
        out = "计算 " + out
    return out[:-1] + "。" if out.endswith(".") else out
