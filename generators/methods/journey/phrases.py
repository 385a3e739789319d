"""What a journey trace says when it catches a mistake and backs up: phrase templates.

Several variants per language and purpose, picked by the trace's seeded `random.Random`,
so a dataset does not repeat one sentence thousands of times. Purposes:

- `feedback`: names the false claim and the right value (`{lhs}`, `{expected}`, `{wrong}`):
  "Wait: 17 * 3 is 51, not 41."; `feedback_late` also names the faulty step (`{step}`), for
  an error noticed a step or two later.
- `why_<error type>`: an optional second sentence saying what went wrong
  (`{copied}`/`{original}` for a wrong operand, `{dropped}` for a dropped term).
- `redo_step`: back to the step that was wrong (`{step}`), for injected errors.
- `back_to_step` / `back_to_start`: back to the branch point of a tree (`{step}` = the last
  good step), or to the beginning when the branch starts at the root.

Add a language by adding a mapping with the same keys; `LANGUAGES` lists them. Pure data
and one function.
"""

from __future__ import annotations

import random

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "feedback": (
            "Wait: {lhs} is {expected}, not {wrong}.",
            "Hold on, that is wrong: {lhs} = {expected}, not {wrong}.",
            "Wait, let me check that. {lhs} equals {expected}, not {wrong}.",
            "Hmm, {lhs} is not {wrong}; it is {expected}.",
            "That does not look right: {lhs} gives {expected}, not {wrong}.",
        ),
        "feedback_late": (
            "Wait, step {step} was wrong: {lhs} is {expected}, not {wrong}.",
            "Hold on, I made a mistake back in step {step}: {lhs} = {expected}, not {wrong}.",
            "Something is off. Checking step {step}: {lhs} gives {expected}, not {wrong}.",
        ),
        "why_wrong_operand": (
            "I copied {copied} where the number is {original}.",
            "I used {copied} instead of {original}.",
        ),
        "why_dropped_term": (
            "I left out the {dropped}.",
            "The {dropped} got dropped.",
        ),
        "why_sign_error": (
            "I got a sign wrong.",
            "The sign is flipped.",
        ),
        "why_arithmetic_slip": ("",),
        "redo_step": (
            "Let me redo step {step}.",
            "Let me go back and redo step {step}.",
            "Going back to step {step}.",
            "I will correct step {step}.",
        ),
        "redo_this": (
            "Let me redo that step.",
            "Let me go back and fix that step.",
        ),
        "back_to_step": (
            "Let me go back to where I was after step {step} and try another way.",
            "Going back to step {step}; this branch does not work.",
            "Let me return to the result of step {step} and continue differently.",
        ),
        "back_to_start": (
            "Let me start over from the beginning.",
            "Going back to the start and trying another way.",
            "Let me go back to the problem and try a different first step.",
        ),
    },
    "zh": {
        "feedback": (
            "等等：{lhs} 等于 {expected}，不是 {wrong}。",
            "不对，{lhs} 应该是 {expected}，而不是 {wrong}。",
            "检查一下：{lhs} = {expected}，不是 {wrong}。",
            "这里算错了：{lhs} 的结果是 {expected}，不是 {wrong}。",
        ),
        "feedback_late": (
            "等等，第 {step} 步算错了：{lhs} 等于 {expected}，不是 {wrong}。",
            "检查一下第 {step} 步：{lhs} = {expected}，不是 {wrong}。",
        ),
        "why_wrong_operand": (
            "我把 {original} 抄成了 {copied}。",
            "这里应该用 {original}，我却用了 {copied}。",
        ),
        "why_dropped_term": (
            "我漏掉了 {dropped}。",
            "{dropped} 这一项被漏掉了。",
        ),
        "why_sign_error": (
            "符号弄错了。",
            "正负号写反了。",
        ),
        "why_arithmetic_slip": ("",),
        "redo_step": (
            "让我重新做第 {step} 步。",
            "回到第 {step} 步重新计算。",
            "我来改正第 {step} 步。",
        ),
        "redo_this": (
            "让我重新做这一步。",
            "回到这一步重新计算。",
        ),
        "back_to_step": (
            "让我回到第 {step} 步之后，换一种做法。",
            "这条路走不通，回到第 {step} 步。",
            "回到第 {step} 步的结果，重新往下做。",
        ),
        "back_to_start": (
            "让我从头开始。",
            "回到开头，换一种做法。",
            "重新审题，换一个第一步。",
        ),
    },
}

LANGUAGES = tuple(PHRASES)
# How two sentences of one paragraph are joined.
SENTENCE_JOIN = {"en": " ", "zh": ""}


def phrase(language: str, purpose: str, rng: random.Random, **fields: object) -> str:
    """One variant of a phrase, filled in.

    >>> phrase("en", "feedback", random.Random(0), lhs="17 * 3", expected=51, wrong=41)
    'Hmm, 17 * 3 is not 41; it is 51.'
    """
    try:
        variants = PHRASES[language][purpose]
    except KeyError:
        raise ValueError(
            f"no {purpose!r} phrases for language {language!r}; languages: {', '.join(LANGUAGES)}"
        ) from None
    return rng.choice(variants).format(**fields)
