"""Carry a wrong value on through step text, as a model that slipped would write it.

A model that writes `64 / 8 = -8` goes on from -8: `so x = -8`, never `so x = 8` (a step
that states the right value beside the wrong one never acts on its error, and its detour
teaches nothing). Three rewrites:

- `carry`: a stretch of prose (a wrong step's conclusion, `so 2x + 21 = 31`) with every
  number that states a carried right value written as its wrong value;
- `wrong_step`: a step with its claim made wrong, the `=` and the result's markup as the
  step wrote them (`= $18`, `200,000`), and the rest of the claim's sentence carried: after
  the claim (`so x = -8`) and before it (`It will take 13 years ... because 90 / 7.5 = 13`);
  earlier sentences are kept, later ones cut (they may use the right value). When the
  sentence states the right value before a claim that also has it as an operand (`by 8:
  64 / 8 = 8`, a given; `remove 7.5 more pounds because 15 - 7.5 = 7.5`, the result), the
  two cannot be told apart, and the step is not used;
- `carry_step`: a later step that runs on from the error: its prose carried as above, and
  each true claim that uses a carried value recomputed from the wrong one
  (`10 / 2 = 5` -> `10 / 12 = 5/6`), its own result then carried through the rest.

A right value stated twice in one stretch (`13 - 3 = 10, so 10x + 10 = 50`: the result and
a given that happens to be equal) cannot be told apart from the text, so nothing is
guessed: both return None and the caller does not use that step. Numbers are read with
the claim reader's tokens (`generators.verify.claim_tokens`): units, currency and code
blocks are understood the way claims are read, and a minus is a sign only where no value
stands before it (`so -7x = -42`, but `x - 42`).

Not here: choosing the error (`inject.py`), the phrases (`phrases.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from reasonfactory.generators.verify.chains import Claim, find_claims, format_value
from reasonfactory.generators.verify.claim_tokens import tokens
from reasonfactory.generators.verify.exact import BinOp, Group, Num, Unary, evaluate, parse_arith
from reasonfactory.generators.verify.judge import claim_holds

STEP_LABEL = re.compile(r"\s*(?:Step \d+\s*[:.]|第 ?\d+ ?步[：:]?)")
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)|\n")


@dataclass(frozen=True)
class Stated:
    """A number as prose states it, sign included, at `text[start:end]`."""

    value: Fraction
    start: int
    end: int
    after_operator: bool  # a binary operator stands before it (`+ 2x`, `x - 2`)


def stated_numbers(text: str) -> list[Stated]:
    """The numbers `text` states, with their signs and spans.

    >>> [(str(s.value), s.start) for s in stated_numbers(", so -7x = -42.")]
    [('-7', 5), ('-42', 11)]
    >>> [str(s.value) for s in stated_numbers("so x - 4 = 5/6")]
    ['4', '5/6']
    """
    toks = [t for t in tokens(text) if t.kind != "space"]
    out: list[Stated] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind != "num" or not re.fullmatch(r"[\d,]*\.?\d+", tok.norm):
            i += 1
            continue
        start, end, value = tok.start, tok.end, Fraction(tok.norm.replace(",", ""))
        before = toks[i - 1] if i >= 1 else None
        prev = toks[i - 2] if i >= 2 else None
        if _glued_fraction(toks, i):  # `5/6`
            value, end = value / Fraction(int(toks[i + 2].norm)), toks[i + 2].end
            i += 2
        minus = before is not None and before.kind == "op" and before.norm == "-"
        if minus and _is_sign(before, prev, tok):
            value, start = -value, before.start
        after_operator = (
            before is not None and before.kind == "op" and not _is_sign(before, prev, tok)
        )
        out.append(Stated(value, start, end, after_operator))
        i += 1
    return out


def _is_sign(op, prev, num) -> bool:
    """Whether an operator token before a number is its sign: nothing valued before it
    (`so -7x`, `= -42`, `(-4)`), or a unit or currency before it with the minus glued to
    the number (`gives -3`, `$-18`; but `20 sheep - 5 sheep` subtracts, and so do `x - 42`
    and `45 -40`)."""
    if op.norm != "-" or prev is None:
        return op.norm == "-"
    if prev.kind in ("num", "rp", "pct") or (prev.kind == "word" and len(prev.norm) == 1):
        return False
    return prev.kind != "skip" or op.end == num.start


def _glued_fraction(toks: list, i: int) -> bool:
    """`toks[i]` opens a fraction written without spaces (`5/6`)."""
    if i + 2 >= len(toks):
        return False
    slash, under = toks[i + 1], toks[i + 2]
    return (
        slash.norm == "/"
        and slash.start == toks[i].end
        and under.kind == "num"
        and under.start == slash.end
        and under.norm.isdigit()
        and int(under.norm) > 0
    )


def carry(text: str, carries: dict[Fraction, str]) -> str | None:
    """`text` with each number that states a key of `carries` (a right value) written as
    its value (the wrong one, as text); None when a right value is stated twice.

    >>> carry(", so x = 8.", {Fraction(8): "-8"})
    ', so x = -8.'
    >>> carry(", so 2x + 21 = 31.", {Fraction(2): "12"})
    ', so 12x + 21 = 31.'
    >>> carry(", so 10x + 10 = 50.", {Fraction(10): "11"}) is None
    True
    """
    found = [s for s in stated_numbers(text) if s.value in carries]
    values = [s.value for s in found]
    if len(values) != len(set(values)):
        return None
    for s in reversed(found):
        new = carries[s.value]
        if s.after_operator and new.startswith("-"):
            new = f"({new})"
        text = text[: s.start] + new + text[s.end :]
    return text


def wrong_step(
    para: str, claim: Claim, lhs: str, right: Fraction, wrong: str
) -> tuple[str, str] | None:
    """(the step with `claim` written as `lhs = wrong` and its sentence carried, the claim
    as now written), or None when the sentence cannot be carried (`carry`).

    >>> step = "Step 3: Divide both sides by 4: 32 / 4 = 8, so x = 8. Done."
    >>> wrong_step(step, find_claims(step)[0], "32 / 4", Fraction(8), "-8")[0]
    'Step 3: Divide both sides by 4: 32 / 4 = -8, so x = -8.'
    >>> step = "Step 3: Divide both sides by 8: 64 / 8 = 8, so x = 8."
    >>> wrong_step(step, find_claims(step)[0], "64 / 8", Fraction(8), "-8") is None
    True
    >>> c = find_claims("She makes 9 * 2 = $18 every day.")[0]
    >>> wrong_step("She makes 9 * 2 = $18 every day.", c, c.lhs, Fraction(18), "17")
    ('She makes 9 * 2 = $17 every day.', '9 * 2 = $17')
    """
    label = STEP_LABEL.match(para)
    head = label.end() if label else 0
    begin = max([head, *(m.end() for m in _SENTENCE_END.finditer(para, head, claim.start))])
    stop = _SENTENCE_END.search(para, claim.end)
    carries = {right: wrong}
    before = para[begin : claim.start]
    operand = right in {o[0] for o in _operands(claim.node)}
    if operand and any(s.value == right for s in stated_numbers(before)):
        return None  # a given or the result stated first: cannot be told apart
    before = carry(before, carries)
    after = carry(para[claim.end : stop.end() if stop else len(para)], carries)
    if before is None or after is None:
        return None
    written = lhs + _result(para, claim, wrong)
    return para[:begin] + before + written + after.rstrip(), written


def _result(para: str, claim: Claim, value: str) -> str:
    """What follows a claim's left side, as the step wrote it (`=`, `$`, thousands commas,
    brackets), with `value` as the result."""
    rhs = para[claim.right.start : claim.right.end]
    if "," in rhs and "/" not in value and "." not in value:
        value = f"{int(value):,}"
    if rhs.startswith("(") and rhs.endswith(")"):
        value = f"({value})"
    return para[claim.left.end : claim.right.start] + value


def carry_step(para: str, carries: dict[Fraction, str]) -> str | None:
    """A step that runs on from an error: its prose carried, its true claims that use a
    carried value recomputed from it (their results join `carries`, which this updates);
    None when that cannot be done consistently.

    >>> carries = {Fraction(2): "12"}
    >>> carry_step("Step 3: Divide both sides by 2: 10 / 2 = 5, so x = 5.", carries)
    'Step 3: Divide both sides by 12: 10 / 12 = 5/6, so x = 5/6.'
    """
    label = STEP_LABEL.match(para)
    pos = label.end() if label else 0
    parts = [para[:pos]]
    for claim in find_claims(para):
        if claim.start < pos:
            continue
        prose = carry(para[pos : claim.start], carries)
        if prose is None:
            return None
        written = _recomputed(para, claim, carries) if claim_holds(claim) else None
        if written is False:
            return None
        parts += [prose, written or para[claim.start : claim.end]]
        pos = claim.end
    rest = carry(para[pos:], carries)
    if rest is None:
        return None
    return "".join([*parts, rest])


def _recomputed(para: str, claim: Claim, carries: dict[Fraction, str]) -> str | None | bool:
    """The claim computed from the first carried operand it uses (None: it uses none;
    False: it cannot be recomputed)."""
    if claim.node is None:
        return None
    used = [o for o in _operands(claim.node) if o[0] in carries]
    if not used:
        return None
    value, start, end, bare = used[0]
    new = carries[value]
    if bare and new.startswith("-"):
        new = f"({new})"
    lhs = claim.lhs[:start] + new + claim.lhs[end:]
    node = parse_arith(lhs)
    result = evaluate(node) if node is not None else None
    if result is None:
        return False
    shown = format_value(result, decimal=claim.decimal)
    carries[claim.rhs_value] = shown
    return lhs + _result(para, claim, shown)


def _operands(node) -> list[tuple[Fraction, int, int, bool]]:
    """(value, start, end, bare) of each number operand: `4`, `-4` and `(-4)` alike; bare
    when it has no bracket or sign of its own (a negative put there needs brackets)."""
    if isinstance(node, Num):
        return [(node.value, node.start, node.end, True)]
    minus = isinstance(node, Unary) and node.op == "-"
    if minus and isinstance(node.operand, Num):
        return [(-node.operand.value, node.start, node.end, False)]
    if isinstance(node, Group):
        return _operands(node.inner)
    if minus:
        return _operands(node.operand)
    if isinstance(node, BinOp):
        return _operands(node.left) + _operands(node.right)
    return []
