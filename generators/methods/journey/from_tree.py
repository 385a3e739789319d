"""Linearise a stored search tree into a journey trace (O1-Journey, report section 6.5).

Input: the `nodes` rows of one tree, in the node contract (`node_id` tags "0", "0.1", ...,
step paragraphs as `text`, terminal answer nodes with `correct`, failed checks as terminal
nodes with `correct = false` and `meta.check = {claim, expected, ok: false, ...}`).

1. The shortcut: a root-to-correct-answer path; the best by mean `q_value` along it (null
   counts as 0), then the shortest, then the first tag.
2. Branch points: shortcut nodes one of whose other children leads to a wrong node, i.e. a
   node whose check failed with a false `claim`, or a step with a false arithmetic claim
   in its text (re-checked with the claim reader). A branch point is only used when the
   shortcut goes on with a step after it, so the correction sits inside the thought.
3. Up to `detours` branch points (chosen by the seed) each get one detour: into an
   off-shortcut child, then one random child per level (among those that lead to a wrong
   node) down to the first wrong node.
4. The thought: shortcut steps, and at each chosen branch point the wrong steps, feedback
   naming the false claim ("Wait: 17 * 3 is 51, not 41."), a line going back to the branch
   point, then the shortcut again. The response is the shortcut's answer paragraph.

Pure: a DataFrame and a seeded `random.Random` in, a `Linearised` record out. Not here:
growing trees (the `tree` method), storing anything.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import polars as pl
from reasonfactory.generators.methods.journey.phrases import SENTENCE_JOIN, phrase
from reasonfactory.generators.methods.journey.text import Journey, Piece, assemble, step_number
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.chains import (
    find_claims,
    format_value,
    parse_claim,
    value_of,
)
from reasonfactory.generators.verify.judge import claim_holds


@dataclass(frozen=True)
class Linearised:
    journey: Journey | None  # None when there is no correct path
    response: str | None
    predicted: str | None
    shortcut: tuple[str, ...]  # node ids, root to answer
    reason: str | None  # None, "no_correct_path" or "no_detour"


@dataclass(frozen=True)
class _Wrong:
    claim: str
    lhs: str
    wrong: str
    expected: str
    kind: str  # the check that caught it: equations | code | rollout | recheck


def _tag(node_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in node_id.split(".") if p.isdigit())


def _meta(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}


def wrong_claim_of(node: dict) -> _Wrong | None:
    """The false claim a node makes (from its failed check, else re-checked in its text)."""
    text = node.get("text") or ""
    if "\\boxed" in text:
        return None  # an answer paragraph does not belong inside the thought
    check = _meta(node.get("meta")).get("check") or {}
    if check.get("ok") is False and check.get("claim") and check.get("expected") is not None:
        claim = parse_claim(str(check["claim"]))
        corrected = parse_claim(f"{claim.lhs} = {check['expected']}") if claim else None
        if claim and corrected and claim_holds(claim) is False and claim_holds(corrected):
            kind = str(check.get("kind") or "check")
            return _Wrong(claim.text, claim.lhs, claim.rhs, corrected.rhs, kind)
    for claim in find_claims(text):
        if claim_holds(claim) is False:
            value = value_of(claim)
            if value is None:
                continue
            expected = format_value(value, decimal=claim.decimal)
            return _Wrong(claim.text, claim.lhs, claim.rhs, expected, "recheck")
    return None


def linearise_tree(
    nodes: pl.DataFrame, *, detours: int = 1, language: str = "en", rng: random.Random
) -> Linearised:
    """One tree's nodes -> a journey thought with up to `detours` detours.

    >>> rows = [("0", None, "", False, None), ("0.1", "0", "Step 1: 17 * 3 = 51.", False, None),
    ...         ("0.1.1", "0.1", "Step 2: 51 + 8 = 59.", False, None),
    ...         ("0.1.1.1", "0.1.1", "The answer is \\\\boxed{59}.", True, True),
    ...         ("0.2", "0", "Step 1: 17 * 3 = 41.", True, False)]
    >>> df = pl.DataFrame(rows, schema=["node_id", "parent_id", "text", "is_terminal",
    ...                   "correct"], orient="row")
    >>> out = linearise_tree(df, rng=random.Random(0))
    >>> print(out.journey.thought)
    Step 1: 17 * 3 = 41.
    <BLANKLINE>
    Wait, let me check that. 17 * 3 equals 51, not 41. Let me redo step 1.
    <BLANKLINE>
    Step 1: 17 * 3 = 51.
    <BLANKLINE>
    Step 2: 51 + 8 = 59.
    """
    rows = {r["node_id"]: r for r in nodes.iter_rows(named=True)}
    children: dict[str, list[str]] = {}
    for nid, r in rows.items():
        if r.get("parent_id") is not None:
            children.setdefault(r["parent_id"], []).append(nid)
    for kids in children.values():
        kids.sort(key=_tag)
    path = _shortcut(rows)
    if path is None:
        return Linearised(None, None, None, (), "no_correct_path")
    answer = rows[path[-1]]
    response = answer["text"].strip()
    predicted = _meta(answer.get("meta")).get("answer") or extract_boxed(response)

    wrong: dict[str, _Wrong | None] = {}
    leads: dict[str, bool] = {}

    def wrong_at(nid: str) -> _Wrong | None:
        if nid not in wrong:
            wrong[nid] = wrong_claim_of(rows[nid])
        return wrong[nid]

    def leads_to_wrong(nid: str) -> bool:
        if nid not in leads:
            leads[nid] = wrong_at(nid) is not None or any(
                leads_to_wrong(k) for k in children.get(nid, [])
            )
        return leads[nid]

    # A branch point needs a step after it on the shortcut (the correction) and a wrong branch.
    options: dict[int, list[str]] = {}
    for i in range(len(path) - 2):
        off = [k for k in children.get(path[i], []) if k != path[i + 1] and leads_to_wrong(k)]
        if off:
            options[i] = off
    chosen = sorted(rng.sample(sorted(options), min(detours, len(options))))

    paragraphs: list[list[Piece]] = []
    details: list[dict] = []
    resume: int | None = None
    for i in range(len(path) - 1):
        if i > 0:
            role = "correction" if resume is not None else "step"
            paragraphs.append([Piece(rows[path[i]]["text"].strip(), role, resume)])
            resume = None
        if i not in chosen:
            continue
        d = len(details)
        # A faulty step right at the branch point is preferred: going back then returns to
        # the faulty step itself, and the correction redoes it.
        direct = [k for k in options[i] if wrong_at(k) is not None]
        branch = [rng.choice(direct or options[i])]
        while wrong_at(branch[-1]) is None:
            branch.append(rng.choice([k for k in children[branch[-1]] if leads_to_wrong(k)]))
        w = wrong_at(branch[-1])
        for nid in branch:
            paragraphs.append([Piece(rows[nid]["text"].strip(), "error", d)])
        step = step_number(rows[path[i]]["text"] or "")
        faulty = step_number(rows[branch[-1]]["text"] or "")
        fields = {"lhs": w.lhs, "expected": w.expected, "wrong": w.wrong}
        if len(branch) == 1:  # the correction is the same step done right: a redo
            back = (
                phrase(language, "redo_step", rng, step=faulty)
                if faulty
                else phrase(language, "redo_this", rng)
            )
        elif i == 0:
            back = phrase(language, "back_to_start", rng)
        else:
            back = phrase(language, "back_to_step", rng, step=step or i)
        if len(branch) > 1 and faulty:  # noticed a step or more later: name the faulty one
            feedback = phrase(language, "feedback_late", rng, step=faulty, **fields)
        else:
            feedback = phrase(language, "feedback", rng, **fields)
        paragraphs.append([Piece(feedback, "feedback", d), Piece(back, "backtrack", d)])
        details.append(
            {
                "kind": "branch",
                "type": w.kind,
                "branch_node": path[i],
                "wrong_nodes": branch,
                "written": w.claim,
                "wrong_claim": w.claim,
                "expected": w.expected,
                "corrected_claim": f"{w.lhs} = {w.expected}",
            }
        )
        resume = d
    journey = assemble(paragraphs, details, SENTENCE_JOIN.get(language, " "))
    return Linearised(journey, response, predicted, tuple(path), None if details else "no_detour")


def _shortcut(rows: dict[str, dict]) -> list[str] | None:
    """The best root-to-correct-answer path, as node ids."""
    best, best_key = None, None
    for nid, r in rows.items():
        if not (r.get("is_terminal") and r.get("correct") is True):
            continue
        path = [nid]
        while rows[path[-1]].get("parent_id") is not None:
            parent = rows[path[-1]]["parent_id"]
            if parent not in rows:
                break
            path.append(parent)
        path.reverse()
        if rows[path[0]].get("parent_id") is not None or len(path) < 2:
            continue  # not connected to the root
        qs = [rows[n].get("q_value") or 0.0 for n in path[1:]]
        key = (-sum(qs) / len(qs), len(path), _tag(nid))
        if best_key is None or key < best_key:
            best, best_key = path, key
    return best
