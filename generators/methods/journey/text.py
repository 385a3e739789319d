"""A journey trace's thought, assembled from labelled pieces, with where each piece sits.

Both ways of making a journey (errors injected into a trace, a wrong branch taken from a
tree) end the same way: paragraphs of steps, wrong steps, feedback, a line that goes back,
and the correct continuation. `assemble` joins them (paragraphs by a blank line, sentences
of one paragraph by a space, or nothing in Chinese) and records, for every detour, the
character span and paragraph index of its wrong step(s), feedback, back-tracking line and
correction. Those records go into `traces.meta` so they can be queried with SQL.

Not here: choosing errors or branches (`reasonfactory.generators.methods.journey.inject`,
`reasonfactory.generators.methods.journey.from_tree`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasonfactory.generators.prompts import STEP_BOUNDARY

ROLES = ("step", "error", "feedback", "backtrack", "correction")
_STEP_NO = re.compile(r"\s*(?:Step (\d+)\s*[:.]|第 ?(\d+) ?步)")


def step_number(para: str) -> str | None:
    """The number of a `Step 3:` or `第 3 步：` paragraph.

    >>> step_number("第 3 步：计算 2 + 2 = 4。"), step_number("Step 12: 1 + 1 = 2.")
    ('3', '12')
    """
    m = _STEP_NO.match(para)
    return next((g for g in m.groups() if g), None) if m else None


@dataclass(frozen=True)
class Piece:
    text: str
    role: str  # one of ROLES
    detour: int | None = None  # the detour (0, 1, ...) it belongs to; None for plain steps


@dataclass(frozen=True)
class Journey:
    """A thought with detours; `errors[i]` says what detour i is and where its parts sit."""

    thought: str
    errors: tuple[dict, ...]


def assemble(paragraphs: list[list[Piece]], details: list[dict], joiner: str = " ") -> Journey:
    """Join paragraphs into a thought; add the spans of each detour to its detail record.

    Each detail gains `<role>_start`, `<role>_end` (character offsets in the thought, end
    exclusive) and `<role>_para` (index of its first paragraph) for the roles error,
    feedback, backtrack and correction.

    >>> j = assemble([[Piece("Step 1: 2 + 2 = 5.", "error", 0)],
    ...               [Piece("Wait: 2 + 2 is 4, not 5.", "feedback", 0),
    ...                Piece("Let me redo step 1.", "backtrack", 0)],
    ...               [Piece("Step 1: 2 + 2 = 4.", "correction", 0)]], [{"type": "x"}])
    >>> j.thought[j.errors[0]["feedback_start"]:j.errors[0]["feedback_end"]]
    'Wait: 2 + 2 is 4, not 5.'
    """
    text_parts: list[str] = []
    spans: dict[tuple[int, str], list[int]] = {}
    pos = 0
    for p_index, paragraph in enumerate(paragraphs):
        if p_index:
            text_parts.append(STEP_BOUNDARY)
            pos += len(STEP_BOUNDARY)
        pieces = [p for p in paragraph if p.text]
        for k, piece in enumerate(pieces):
            if k:
                text_parts.append(joiner)
                pos += len(joiner)
            text_parts.append(piece.text)
            if piece.detour is not None:
                key = (piece.detour, piece.role)
                if key in spans:
                    spans[key][1] = pos + len(piece.text)
                else:
                    spans[key] = [pos, pos + len(piece.text), p_index]
            pos += len(piece.text)
    records = []
    for i, detail in enumerate(details):
        record = dict(detail)
        for role in ROLES[1:]:
            start, end, para = spans.get((i, role), (None, None, None))
            record[f"{role}_start"], record[f"{role}_end"], record[f"{role}_para"] = (
                start,
                end,
                para,
            )
        records.append(record)
    return Journey("".join(text_parts), tuple(records))
