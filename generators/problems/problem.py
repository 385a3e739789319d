"""`Problem`: one made problem (question, gold, family, difficulty), before it becomes a row."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    question: str
    gold: str
    family: str
    difficulty: int
    meta: dict = field(default_factory=dict)  # stored in `problems.meta` (a code problem's tests)
