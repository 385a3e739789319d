"""Math-Shepherd labels (arXiv 2312.08935): from a step, N completions; the share that reach
the right answer is the step's soft label `mc_value`, and `mc_value > 0` its hard label.

Pure functions: the `tree` generator builds the requests (all nodes of a round in one engine
call) and hands the completions here. A completion from a prefix that is still inside
`<think>` must close the thought and box an answer after it to count; one from a prefix that
already closed it is the answer paragraph itself. Not here: deciding whether an answer is
right (the caller passes `is_right`, backed by math-verify).
"""

from __future__ import annotations

from collections.abc import Callable

from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.generators.verify.steps import StepCheck


def completion_answer(text: str, closed: bool) -> str | None:
    """The final answer a continuation reaches, or None if it never boxes one after `</think>`.

    >>> completion_answer("Step 3: 4 + 1 = 5.\\n</think>\\n\\nThe answer is \\\\boxed{5}.", False)
    '5'
    >>> completion_answer("Step 3: \\\\boxed{5}", False) is None
    True
    """
    if closed:
        return extract_boxed(text)
    if "</think>" not in text:
        return None
    return extract_boxed(text.split("</think>", 1)[1])


def mc_label(answers: list[str | None], is_right: Callable[[str | None], bool]) -> StepCheck:
    """The rollout verdict: ok when at least one completion reaches the right answer.

    >>> mc_label(["5", "4", None, "5"], lambda a: a == "5").detail
    '2/4 completions reach the answer (mc_value 0.5)'
    """
    hits = sum(1 for a in answers if is_right(a))
    n = len(answers)
    value = hits / n if n else 0.0
    return StepCheck(
        "rollout",
        hits > 0,
        detail=f"{hits}/{n} completions reach the answer (mc_value {value:.3g})",
    )


def mc_value(answers: list[str | None], is_right: Callable[[str | None], bool]) -> float:
    """Soft label: the share of completions that reach the right answer."""
    return sum(1 for a in answers if is_right(a)) / len(answers) if answers else 0.0
