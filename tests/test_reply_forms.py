"""Replies that do not write `<think>`: the final-answer phrases, the parse, the verdicts.

The texts are SmolLM2-135M-Instruct replies (tests/fixtures/smollm2_replies.jsonl) or cut
from them.
"""

from __future__ import annotations

import polars as pl
import pytest
from reasonfactory.filters.answer import answer_filter
from reasonfactory.filters.format import format_filter
from reasonfactory.generators.methods.self_output import SelfOutputConfig
from reasonfactory.generators.prompts import FINAL_ANSWER_PROMPT, SOLVE_PROMPT, parse_completion
from reasonfactory.generators.reply_forms import split_final_answer

PHRASES = [
    # (reply, thought, answer)
    ("2 * 6 = 12\n12 + 41 = 53\nThe final answer is 53.", "2 * 6 = 12\n12 + 41 = 53", "53"),
    ("12 - 5 = 7\n\n**Final Answer:** 7", "12 - 5 = 7", "7"),
    ("She pays 3 * 4 = $12.\nThe final answer is: $12", "She pays 3 * 4 = $12.", "12"),
    ("5 + 5 = 10\nAnswer: 10", "5 + 5 = 10", "10"),
    ("3 * 400 = 1200\n#### 1,200", "3 * 400 = 1200", "1200"),
    ("x = 4 / 8 = 1/2, so $\\boxed{\\frac{1}{2}}$.", "x = 4 / 8 = 1/2, so $", "\\frac{1}{2}"),
    # the last phrase wins: a model that restates its answer
    (
        "The final answer is 4.\nWait: 2 + 3 = 5.\nThe final answer is 5.",
        "The final answer is 4.\nWait: 2 + 3 = 5.",
        "5",
    ),
    ("The final answer is x = 7.", "x = 7.", "7"),
    # SmolLM2-135M replies (tests/fixtures/smollm2_replies.jsonl)
    ("28 / 8 = 6\n\nThe answer is: 6", "28 / 8 = 6", "6"),
    (
        "The final answer is 3 * 7 * 2 * 180 = 3200\n\nSo, the answer is 3200.",
        "The final answer is 3 * 7 * 2 * 180 = 3200\n\nSo,",
        "3200",
    ),
    # a calculation on the answer line, and what follows it, stay in the thought
    ("9 + 46 = 54\n\nThe final answer is 2 * (25/5) = 15.", "9 + 46 = 54\n2 * (25/5) = 15.", "15"),
    ("4 + 4 = 8.\n\nThis is the final answer.", "4 + 4 = 8.", "8"),
    (
        "we add these results: 48 + 56 = 12, which equals the final answer.",
        "we add these results: 48 + 56 = 12,",
        "12",
    ),
    ("No, no problem. The answer to your question is: 20", "No, no problem.", "20"),
    (
        "Answer: 25 cups of feed.\n\nTotal feed = 3 * 15 = 40",
        "Total feed = 3 * 15 = 40",
        "25",
    ),
    (
        "48 + 56 = 12, which equals the final answer.\nFinal answer is 16.",
        "48 + 56 = 12, which equals the final answer.",
        "16",
    ),
]


@pytest.mark.parametrize(("reply", "thought", "answer"), PHRASES)
def test_final_answer_phrases(reply, thought, answer):
    got = split_final_answer(reply)
    assert got is not None
    assert (got[0], got[2]) == (thought, answer)
    assert got[1] == f"The final answer is \\boxed{{{answer}}}."


@pytest.mark.parametrize(
    "reply",
    [
        "The answer depends on the day.",
        "2 + 2 = 4",
        "",
        "The final answer is",
        "x + 13 = 5x + 25\nThe final answer is the answer.",  # SmolLM2, parroting the prompt
        "The final answer is ANSWER.",
    ],
)
def test_no_final_answer_phrase(reply):
    assert split_final_answer(reply) is None


def _frame(texts, reply="r1", gold="53"):
    parsed = [parse_completion(t, None, reply) for t in texts]
    return pl.DataFrame(
        {
            "thought": [p.thought for p in parsed],
            "response": [p.response for p in parsed],
            "predicted": [p.predicted for p in parsed],
            "think_closed": [p.think_closed for p in parsed],
            "finish_reason": ["stop"] * len(parsed),
            "gold": [gold] * len(parsed),
            "gold_source": ["problem"] * len(parsed),
        }
    )


def test_verdicts_say_what_is_missing():
    texts = [
        "12 + 41 = 53\nThe final answer is 53.",  # no <think>, R1 asked for
        "<think>\n12 + 41 = 53\n",  # opened, never closed
        "<think>\n12 + 41 = 53\n</think>\n\nSo it is 53.",  # no boxed answer
    ]
    r1 = _frame(texts)
    assert format_filter(r1)["reason"].to_list() == [
        "format:no_think",
        "format:unclosed_think",
        "format:no_boxed",
    ]
    # nothing to read is not a wrong answer
    assert answer_filter(r1)["reason"].to_list() == ["no_answer", "no_answer", "no_answer"]
    # the same replies read in the final_answer form: the first is a whole trace
    fa = _frame(texts, "final_answer")
    assert format_filter(fa)["reason"].to_list()[0] is None
    assert answer_filter(fa)["reason"].to_list()[0] is None
    assert fa["response"][0] == "The final answer is \\boxed{53}."


def test_r1_default_and_prompt_settings():
    cfg = SelfOutputConfig()
    assert cfg.messages("Q?") == ({"role": "user", "content": SOLVE_PROMPT.format(question="Q?")},)
    fa = SelfOutputConfig(reply="final_answer")
    assert fa.messages("Q?")[-1]["content"] == FINAL_ANSWER_PROMPT.format(question="Q?")
    assert "12 * 3" not in FINAL_ANSWER_PROMPT  # a weak model copies a worked example
    shots = SelfOutputConfig(
        reply="final_answer",
        system_prompt="You are a careful calculator.",
        user_prompt="Problem: {question}",
        examples=[{"question": "What is 2 + 3?", "reply": "2 + 3 = 5\nThe final answer is 5."}],
    )
    assert [m["role"] for m in shots.messages("Q?")] == ["system", "user", "assistant", "user"]
    assert shots.messages("Q?")[-1]["content"] == "Problem: Q?"
    with pytest.raises(ValueError, match="must contain"):
        SelfOutputConfig(user_prompt="no placeholder")
