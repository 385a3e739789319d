"""Inject a mistake into a correct trace, then its feedback and correction (journey, `inject`).

One step's arithmetic claim is perturbed in one of four ways:

| type | the wrong step writes | e.g. (right: `22 * 3 = 66`, `22 + 7 = 29`) |
|---|---|---|
| `arithmetic_slip` | the right left side, a result off by a little | `22 * 3 = 69` |
| `sign_error` | a sum computed as a difference (or back), or the result negated | `22 + 7 = 15` |
| `wrong_operand` | one number miscopied, correctly computed from the miscopy | `23 * 3 = 69` |
| `dropped_term` | the last term or factor left out of the result | `22 + 7 = 22` |

sympy confirms that the false claim (the step's left side = what it wrote) is false and the
corrected claim is true; otherwise that perturbation is not used. The trace then reads:
the steps before, the wrong step (cut after the false claim), one paragraph of feedback
that names what is wrong plus a line going back, the original step, and the rest of the
trace unchanged, so it still reaches the same answer.

Not here: the phrases (`generators.methods.journey.phrases`), the journey method itself
(`reasonfactory.generators.methods.journey`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from fractions import Fraction

from reasonfactory.generators.methods.journey.phrases import SENTENCE_JOIN, phrase
from reasonfactory.generators.methods.journey.text import Journey, Piece, assemble
from reasonfactory.generators.prompts import STEP_BOUNDARY
from reasonfactory.generators.verify.arith import (
    BinOp,
    evaluate,
    format_value,
    numbers_in,
    parse_arith,
    unwrap,
)
from reasonfactory.generators.verify.claims import Claim, claim_holds, find_claims

ERROR_TYPES = ("arithmetic_slip", "sign_error", "wrong_operand", "dropped_term")
_SLIPS = [d for d in range(-10, 11) if d] + [-20, 20]
_STEP_NO = re.compile(r"\s*Step (\d+)\s*[:.]")
_INT = re.compile(r"(?<![\d.])\d+(?![\d.])")
_STEP_LABEL = re.compile(r"Step \d+")


@dataclass(frozen=True)
class Perturbation:
    type: str
    written: str  # the claim as the wrong step shows it
    wrong_claim: str  # the false equation the wrong step asserts
    wrong: str  # the wrong value it wrote
    expected: str  # the right value of the left side
    corrected_claim: str  # the left side = the right value
    why: dict = field(default_factory=dict)  # fields of the `why_<type>` phrase


def perturb_claim(
    claim: Claim, kind: str, rng: random.Random, context: list[Fraction] = ()
) -> Perturbation | None:
    """A wrong version of a true claim, or None when `kind` does not apply to it.

    `context` holds numbers seen before the claim (a miscopied operand comes from there).

    >>> from reasonfactory.generators.verify.claims import find_claims
    >>> [c] = find_claims("Step 2: 22 * 3 = 66.")
    >>> perturb_claim(c, "dropped_term", random.Random(0)).written
    '22 * 3 = 22'
    """
    if claim.node is None:
        return None  # a left side arith cannot rewrite (`20% * 50`)
    value = evaluate(claim.node)
    if value is None:
        return None
    dec = claim.decimal
    root = unwrap(claim.node)
    written_lhs, why = claim.lhs, {}
    if kind == "arithmetic_slip":
        wrong = value + rng.choice(_SLIPS)
    elif kind == "sign_error":
        if isinstance(root, BinOp) and root.op in "+-":
            left, right = evaluate(root.left), evaluate(root.right)
            wrong = left - right if root.op == "+" else left + right
        else:
            wrong = -value
    elif kind == "wrong_operand":
        literals = numbers_in(claim.node)
        original = rng.choice(literals)
        pool = sorted({c for c in context if c != original.value and c >= 0})
        new = rng.choice(pool) if pool else original.value + rng.choice([-1, 1])
        if new < 0:
            return None
        new_text = format_value(new, decimal=dec)
        written_lhs = claim.lhs[: original.start] + new_text + claim.lhs[original.end :]
        miscopied = parse_arith(written_lhs)
        wrong = evaluate(miscopied) if miscopied is not None else None
        why = {"copied": new_text, "original": original.text}
    elif kind == "dropped_term":
        if not isinstance(root, BinOp):
            return None
        wrong = evaluate(root.left)
        why = {"dropped": claim.lhs[root.op_start : root.end]}
    else:
        raise ValueError(f"unknown error type {kind!r}; known: {', '.join(ERROR_TYPES)}")
    if wrong is None or wrong == value:
        return None
    wrong_text = format_value(wrong, decimal=dec)
    expected = format_value(value, decimal=dec)
    wrong_claim = f"{claim.lhs} = {wrong_text}"
    corrected = f"{claim.lhs} = {expected}"
    if claim_holds(wrong_claim) is not False or claim_holds(corrected) is not True:
        return None
    return Perturbation(
        kind, f"{written_lhs} = {wrong_text}", wrong_claim, wrong_text, expected, corrected, why
    )


def inject_errors(
    thought: str,
    *,
    detours: int,
    rng: random.Random,
    types: tuple[str, ...] = ERROR_TYPES,
    language: str = "en",
    question: str = "",
) -> Journey | None:
    """The thought with up to `detours` steps made wrong, each followed by feedback, a line
    going back and the original step; None when no step has a true claim to perturb.

    >>> j = inject_errors("Step 1: 17 + 5 = 22.\\n\\nStep 2: 22 * 3 = 66.", detours=1,
    ...                   rng=random.Random(1), types=("arithmetic_slip",))
    >>> [e["wrong_claim"] for e in j.errors], j.thought.endswith("Step 2: 22 * 3 = 66.")
    (['17 + 5 = 15'], True)
    """
    paragraphs = thought.split(STEP_BOUNDARY)
    candidates = []
    for i, para in enumerate(paragraphs):
        true_claims = [c for c in find_claims(para) if claim_holds(c)]
        if true_claims:
            candidates.append((i, true_claims[0]))
    picks: dict[int, tuple[Claim, Perturbation]] = {}
    for i, claim in rng.sample(candidates, len(candidates)):
        if len(picks) == detours:
            break
        seen = question + " " + STEP_BOUNDARY.join(paragraphs[:i]) + paragraphs[i][: claim.start]
        context = [Fraction(int(n)) for n in _INT.findall(_STEP_LABEL.sub("", seen))]
        for kind in rng.sample(list(types), len(types)):
            p = perturb_claim(claim, kind, rng, context)
            if p is not None:
                picks[i] = (claim, p)
                break
    if not picks:
        return None
    out: list[list[Piece]] = []
    details: list[dict] = []
    for i, para in enumerate(paragraphs):
        if i not in picks:
            out.append([Piece(para, "step")])
            continue
        claim, p = picks[i]
        d = len(details)
        tail = para[claim.end :]
        tail = tail if tail.strip() in ("", ".") else "."
        step = _STEP_NO.match(para)
        back = (
            phrase(language, "redo_step", rng, step=step.group(1))
            if step
            else phrase(language, "redo_this", rng)
        )
        feedback = phrase(
            language, "feedback", rng, lhs=claim.lhs, expected=p.expected, wrong=p.wrong
        )
        out.append([Piece(para[: claim.start] + p.written + tail, "error", d)])
        out.append(
            [
                Piece(feedback, "feedback", d),
                Piece(phrase(language, f"why_{p.type}", rng, **p.why), "feedback", d),
                Piece(back, "backtrack", d),
            ]
        )
        out.append([Piece(para, "correction", d)])
        details.append(
            {
                "kind": "inject",
                "type": p.type,
                "step": int(step.group(1)) if step else None,
                "written": p.written,
                "wrong_claim": p.wrong_claim,
                "expected": p.expected,
                "corrected_claim": p.corrected_claim,
                **{f"why_{k}": v for k, v in p.why.items()},
            }
        )
    return assemble(out, details, SENTENCE_JOIN.get(language, " "))
