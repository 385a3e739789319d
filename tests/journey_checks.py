"""Invariants every kept journey trace must satisfy, checked apart from the generator.

Claims are judged here with sympy's own parser on the stored claim strings (our own
output, so parsing them directly is fine in a test), not with the generator's parser.
"""

from __future__ import annotations

import json

import sympy
from reasonfactory.generators.verify.answer import Outcome, check_answer
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
