"""Inject a mistake into a correct trace, then its feedback and correction (journey, `inject`).

One step's arithmetic claim is perturbed in one of four ways:

| type | the wrong step writes | e.g. (right: `22 * 3 = 66`, `22 + 7 = 29`) |
|---|---|---|
| `arithmetic_slip` | the right left side, a result slipped the way people slip | `22 * 3 = 68` |
| `sign_error` | a sum computed as a difference (or back), or the result negated | `22 + 7 = 15` |
| `wrong_operand` | one number miscopied, correctly computed from the miscopy | `23 * 3 = 69` |
| `dropped_term` | one term or factor of a longer sum or product left out | `4 + 5 + 7 = 11` |

A slip is one of: a digit misread (`66` -> `68`, never the leading digit of a longer
number), a carry missed or added (`66` -> `56`), off by one, two adjacent digits transposed
(`69` -> `96`); a slip that moves the result by more than half its size (and more than 2)
is not used: people's slips stay near the right value. `dropped_term` applies only to a sum
or product of three or more terms (dropping from `a + b` would just write `a`).

The wrong step is written as a model that slipped would write it: the rest of the claim's
sentence goes on from the wrong value (`64 / 8 = -8, so x = -8`, never `so x = 8`), and
keeps what surrounds its claim (`= $`, thousands commas, units, punctuation); a step whose
sentence cannot be carried without guessing is not used (`journey.carry`). An error may
run on (`run_on`): the next step or two go on from the wrong value (their claims that use
it recomputed from it, their prose carried) before the feedback notices it, names the
faulty step and goes back to it; the wrong step and the steps it ran into are the detour's
`error` span.

the claim reader confirms, exactly, that the false claim (the step's left side = what it
wrote) is false and the corrected claim is true; otherwise that perturbation is not used.
The trace then reads: the steps before, the wrong step (cut after the sentence of the false
claim), one paragraph of feedback that names what is wrong plus a line going back, the
original step, and the rest of the trace unchanged, so it still reaches the same answer.

Not here: the phrases (`generators.methods.journey.phrases`), the journey method itself
(`reasonfactory.generators.methods.journey`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from fractions import Fraction

from reasonfactory.generators.methods.journey.carry import carry_step, wrong_step
from reasonfactory.generators.methods.journey.phrases import SENTENCE_JOIN, phrase
from reasonfactory.generators.methods.journey.text import Journey, Piece, assemble, step_number
from reasonfactory.generators.prompts import STEP_BOUNDARY
from reasonfactory.generators.verify.chains import Claim, find_claims, format_value
from reasonfactory.generators.verify.exact import (
    BinOp,
    evaluate,
    numbers_in,
    parse_arith,
    unwrap,
)
from reasonfactory.generators.verify.judge import claim_holds

ERROR_TYPES = ("arithmetic_slip", "sign_error", "wrong_operand", "dropped_term")
SLIP_KINDS = ("digit", "carry", "off_by_one", "transposed")
RUN_ON_WEIGHTS = (0.6, 0.25, 0.15)  # the error is noticed after 0, 1 or 2 more steps
_INT = re.compile(r"(?<![\d.])\d+(?![\d.])")
_STEP_LABEL = re.compile(r"Step \d+|第 ?\d+ ?步")


@dataclass(frozen=True)
class Perturbation:
    type: str
    written: str  # the claim as the wrong step shows it (normalised: `lhs = wrong`)
    wrong_claim: str  # the false equation the wrong step asserts
    wrong: str  # the wrong value it wrote
    expected: str  # the right value of the left side
    corrected_claim: str  # the left side = the right value
    why: dict = field(default_factory=dict)  # fields of the `why_<type>` phrase
    written_lhs: str = ""  # the left side the wrong step shows (a miscopied operand in it)


def perturb_claim(
    claim: Claim, kind: str, rng: random.Random, context: list[Fraction] = ()
) -> Perturbation | None:
    """A wrong version of a true claim, or None when `kind` does not apply to it.

    `context` holds numbers seen before the claim (a miscopied operand comes from there).

    >>> from reasonfactory.generators.verify.chains import find_claims
    >>> [c] = find_claims("Step 2: 22 + 7 + 5 = 34.")
    >>> perturb_claim(c, "dropped_term", random.Random(0)).written
    '22 + 7 + 5 = 27'
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
        slipped = slip(value, rng, decimal=dec)
        if slipped is None:
            return None
        wrong, why = slipped[0], {"slip": slipped[1]}
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
        dropped = drop_term(root, rng)
        if dropped is None:
            return None
        wrong, term = dropped
        why = {"dropped": claim.lhs[term.start : term.end]}
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
    written = f"{written_lhs} = {wrong_text}"
    return Perturbation(
        kind, written, wrong_claim, wrong_text, expected, corrected, why, written_lhs
    )


def _run_on(paragraphs: list[str], i: int, p: Perturbation, picks: dict, rng) -> list[str]:
    """The next steps as they read when the wrong value is carried on (0 to 2 of them, not
    the last paragraph, not another detour's step): each carried through
    (`carry.carry_step`); the run stops where a step cannot be carried consistently."""
    k = rng.choices(range(len(RUN_ON_WEIGHTS)), weights=RUN_ON_WEIGHTS)[0]
    k = min(k, len(paragraphs) - 2 - i)
    for j in range(i + 1, i + 1 + max(k, 0)):
        if j in picks:
            k = j - i - 1
            break
    carries = {Fraction(p.expected): p.wrong}
    out = []
    for j in range(i + 1, i + 1 + max(k, 0)):
        para = carry_step(paragraphs[j], carries)
        if para is None:
            return out  # cannot carry it on consistently: notice it here
        out.append(para)
    return out


def plausible_slip(value: Fraction, wrong: Fraction) -> bool:
    """A slip people make stays near the value: within half of it, or within 2."""
    return wrong != value and (abs(wrong - value) <= 2 or abs(wrong - value) * 2 <= abs(value))


def slip(value: Fraction, rng: random.Random, decimal: bool = False) -> tuple[Fraction, str] | None:
    """`value` slipped one of the ways in `SLIP_KINDS` (picked at random among those that
    apply and stay plausible), with the kind's name; None if none does.

    >>> slip(Fraction(69), random.Random(0))
    (Fraction(96, 1), 'transposed')
    """
    text = format_value(value, decimal=decimal)
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    digits = [i for i, ch in enumerate(body) if ch.isdigit()]
    for kind in rng.sample(SLIP_KINDS, len(SLIP_KINDS)):
        options: list[str] = []
        if kind == "off_by_one":
            options = [format_value(value + d, decimal=decimal) for d in (-1, 1)]
        elif kind == "digit":
            where = [i for i in digits if not (i == digits[0] and len(digits) > 1)]
            for i in where:
                for d in (-2, -1, 1, 2):
                    new = int(body[i]) + d
                    if 0 <= new <= 9:
                        options.append(sign + body[:i] + str(new) + body[i + 1 :])
        elif kind == "carry":
            whole = len(body.split(".")[0])
            options = [
                format_value(value + s * 10**k, decimal=decimal)
                for k in range(1, whole)
                for s in (-1, 1)
            ]
        elif kind == "transposed":
            for a, b in zip(digits, digits[1:], strict=False):
                if b == a + 1 and body[a] != body[b] and not (a == 0 and body[b] == "0"):
                    options.append(sign + body[:a] + body[b] + body[a] + body[b + 1 :])
        values = [Fraction(o.replace(",", "")) for o in options if o and o not in ("-", "")]
        values = [v for v in values if plausible_slip(value, v)]
        if values:
            return rng.choice(values), kind
    return None


def drop_term(root, rng: random.Random):
    """(the value without one term, that term) for a sum or product of three or more terms;
    None for anything shorter (`a + b` would only write `a`)."""
    if not isinstance(root, BinOp):
        return None
    family = "+-" if root.op in "+-" else ("*" if root.op == "*" else None)
    if family is None:
        return None
    terms = []  # (sign, node)
    node, sign = root, 1
    while isinstance(node, BinOp) and node.op in family:
        terms.append((-1 if node.op == "-" else 1, node.right))
        node = node.left
    terms.append((1, node))
    if len(terms) < 3:
        return None
    total = evaluate(root)
    k = rng.randrange(len(terms))
    sign, term = terms[k]
    part = evaluate(term)
    if part is None or total is None:
        return None
    if family == "+-":
        return total - sign * part, term
    return (total / part, term) if part != 0 else None


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
    (['17 + 5 = 24'], True)
    """
    paragraphs = thought.split(STEP_BOUNDARY)
    candidates = []
    for i, para in enumerate(paragraphs):
        true_claims = [c for c in find_claims(para) if claim_holds(c)]
        if true_claims:
            candidates.append((i, true_claims[0]))
    picks: dict[int, tuple[Claim, Perturbation, str]] = {}
    for i, claim in rng.sample(candidates, len(candidates)):
        if len(picks) == detours:
            break
        seen = question + " " + STEP_BOUNDARY.join(paragraphs[:i]) + paragraphs[i][: claim.start]
        context = [Fraction(int(n)) for n in _INT.findall(_STEP_LABEL.sub("", seen))]
        for kind in rng.sample(list(types), len(types)):
            p = perturb_claim(claim, kind, rng, context)
            if p is None:
                continue
            right = Fraction(p.expected)
            wrong = wrong_step(paragraphs[i], claim, p.written_lhs, right, p.wrong)
            if wrong is not None:  # else its sentence cannot carry the wrong value
                picks[i] = (claim, p, wrong)
                break
    if not picks:
        return None
    out: list[list[Piece]] = []
    details: list[dict] = []
    for i, para in enumerate(paragraphs):
        if i not in picks:
            out.append([Piece(para, "step")])
            continue
        claim, p, (wrong, written) = picks[i]
        d = len(details)
        step = step_number(para)
        ran_into = _run_on(paragraphs, i, p, picks, rng)
        back = (
            phrase(language, "redo_step", rng, step=step)
            if step
            else phrase(language, "redo_this", rng)
        )
        fields = {"lhs": claim.lhs, "expected": p.expected, "wrong": p.wrong}
        if ran_into and step:
            feedback = phrase(language, "feedback_late", rng, step=step, **fields)
        else:
            feedback = phrase(language, "feedback", rng, **fields)
        out.append([Piece(wrong, "error", d)])
        out.extend([Piece(text, "error", d)] for text in ran_into)
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
                "step": int(step) if step else None,
                "written": written,
                "wrong_claim": p.wrong_claim,
                "expected": p.expected,
                "corrected_claim": p.corrected_claim,
                "run_on": len(ran_into),
                **{f"why_{k}": v for k, v in p.why.items()},
            }
        )
    return assemble(out, details, SENTENCE_JOIN.get(language, " "))
