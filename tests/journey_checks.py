"""Invariants every kept journey trace must satisfy, checked apart from the generator.

Claims are judged here with sympy's own parser on the stored claim strings (our own
output, so parsing them directly is fine in a test), not with the generator's parser.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction

import sympy
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.chains import find_equations, parse_claim, value_of
from reasonfactory.generators.verify.claim_tokens import tokens
from reasonfactory.generators.verify.judge import judge
from sympy.parsing.sympy_parser import parse_expr


def holds(claim: str) -> bool:
    lhs, rhs = claim.split("=")
    lhs = lhs.replace("\\times", "*").replace("\\cdot", "*")
    return sympy.simplify(parse_expr(lhs) - parse_expr(rhs)) == 0


def check_journey(row: dict, *, plain_thought: str | None = None) -> list[dict]:
    """Assert the journey invariants for one trace row; returns its error records.

    - at least one detour; each: wrong step(s), then feedback naming the right value, then
      a line going back, then the correction, in that order inside the thought;
    - the wrong claim is false and the corrected claim true (sympy);
    - with the detour paragraphs taken out, the thought is the plain trace it came from;
    - the final answer matches the gold.
    """
    thought = row["thought"]
    journey = json.loads(row["meta"])["journey"]
    errors = journey["errors"]
    assert errors and journey["n_detours"] == len(errors)
    previous_end = 0
    detour_paragraphs = set()
    for e in errors:
        spans = [
            (e["error_start"], e["error_end"]),
            (e["feedback_start"], e["feedback_end"]),
            (e["backtrack_start"], e["backtrack_end"]),
            (e["correction_start"], e["correction_end"]),
        ]
        flat = [x for span in spans for x in span]
        assert flat == sorted(flat) and previous_end <= flat[0], e
        assert flat[-1] <= len(thought), e
        previous_end = flat[-1]
        wrong_text = thought[e["error_start"] : e["error_end"]]
        assert e["written"] in wrong_text, (e["written"], wrong_text)
        assert e["expected"] in thought[e["feedback_start"] : e["feedback_end"]], e
        assert not holds(e["wrong_claim"]), e["wrong_claim"]
        assert holds(e["corrected_claim"]), e["corrected_claim"]
        assert e["corrected_claim"].split("=")[0] == e["wrong_claim"].split("=")[0]
        if e["kind"] == "inject":
            correction = thought[e["correction_start"] : e["correction_end"]]
            assert e["corrected_claim"] in correction, (e, correction)
        first = e["error_para"]
        detour_paragraphs.update(range(first, e["feedback_para"] + 1))
    if plain_thought is not None:
        paragraphs = thought.split("\n\n")
        kept = [p for i, p in enumerate(paragraphs) if i not in detour_paragraphs]
        assert "\n\n".join(kept) == plain_thought
    assert row["predicted"] is not None
    assert check_answer(row["gold"], row["predicted"]) is Outcome.CORRECT
    return errors


def stated_values(text: str) -> list[Fraction]:
    """Every number `text` states, signed, read with the claim reader's own tokens
    (`generators.verify.claim_tokens`): `so -7x = -42` states -7 and -42, `x - 42` and
    `45 -40` state 42 and 40 (a minus after a value or a variable subtracts), `2 gives -3`
    states -3 (after a unit word, a minus glued to its number is its sign), `x = 5/6`
    states 5/6."""
    toks = [t for t in tokens(text) if t.kind != "space"]
    values: list[Fraction] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind != "num":
            i += 1
            continue
        value = Fraction(tok.norm.replace(",", ""))
        before = toks[i - 1] if i else None
        prev = toks[i - 2] if i >= 2 else None
        if before is not None and before.kind == "op" and before.norm == "-":
            valued = prev is not None and (
                prev.kind in ("num", "rp", "pct") or (prev.kind == "word" and len(prev.norm) == 1)
            )
            unit = prev is not None and prev.kind == "skip"
            if not valued and not (unit and before.end != tok.start):
                value = -value
        glued = i + 2 < len(toks) and toks[i + 1].norm == "/" and toks[i + 2].kind == "num"
        if glued and toks[i + 1].start == tok.end and toks[i + 2].start == toks[i + 1].end:
            value /= Fraction(toks[i + 2].norm.replace(",", ""))  # a written fraction `5/6`
            i += 2
        values.append(value)
        i += 1
    return values


# Test-side sentence and label splitting (what a sentence is, not how claims are read).
_LABEL = re.compile(r"\s*(?:Step \d+\s*[:.]|第 ?\d+ ?步[：:]?)")
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)|\n")


def _around(step: str, start: int, end: int) -> list[Fraction]:
    """The numbers stated in the sentence of `step[start:end]`, outside it (no step label)."""
    label = _LABEL.match(step)
    head = label.end() if label else 0
    begin = max([head, *(m.end() for m in _SENTENCE_END.finditer(step, head, start))])
    stop = _SENTENCE_END.search(step, end)
    return stated_values(step[begin:start]) + stated_values(
        step[end : stop.end() if stop else len(step)]
    )


def restated_right_value(thought: str, e: dict) -> bool:
    """Whether a detour's wrong step states the right value of its own result anyway.

    The wrong step is the paragraph of the error span that writes the wrong claim; its
    result's right value is the corrected claim's left side, computed by the claim reader.
    It is restated when one of the step's equations (read by `find_equations`) has that
    value on its right side and holds, or when the rest of the claim's sentence (`so x = 8`,
    `so 2x + 21 = 31`, `It will take 12 years ... because 90 / 7.5 = 13`) states it as often
    as the same step done right does (the correction, when it redoes the same claim), or at
    all when the thought holds no such step. A step done right may state the value more
    than once, once as a given that happens to be equal (`Divide both sides by 8: 64 / 8 =
    8, so x = 8`; `(-18) - (-26) = 8, so 8x = 8`): a wrong step that carried its error
    states it fewer times (`... = -8, so x = -8`; `... = 9, so 8x = 9`).
    """
    corrected = parse_claim(e["corrected_claim"])
    right = value_of(corrected)
    span = thought[e["error_start"] : e["error_end"]]
    step = next(p for p in span.split("\n\n") if e["written"] in p)
    for claim in find_equations(step):
        if claim.rhs_value == right and judge(claim) is not False:
            return True
    at = step.index(e["written"])
    stated = _around(step, at, at + len(e["written"])).count(right)
    if not stated:
        return False
    done_right = thought[e["correction_start"] : e["correction_end"]].split("\n\n")[0]
    lhs = corrected.left.shown
    twin = [c for c in find_equations(done_right) if c.left.shown == lhs and judge(c)]
    if not twin:
        return True
    return stated >= _around(done_right, twin[0].start, twin[0].end).count(right)
