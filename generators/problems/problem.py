"""`Problem`: one made problem (question, gold, family, difficulty), before it becomes a row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    question: str
    gold: str
    family: str
    difficulty: int
