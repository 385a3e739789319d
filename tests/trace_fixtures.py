"""Real-looking traces for the filter tests: English, Chinese, code-switched, truncated.

`make_traces` builds a frame with the trace columns and the working columns the
generators add, parsing each completion the way `self_output` does.
"""

from __future__ import annotations

import json

import polars as pl
from reasonfactory.generators.prompts import parse_completion

ENGLISH = (
    "<think>\nWe need the total number of apples the farmer sells. He has 12 baskets and each "
    "basket holds 7 apples, so first we multiply: $12 \\times 7 = 84$.\n\nThen the children eat "
    "9 of them, which leaves $84 - 9 = 75$ apples for the market. Let me double-check the "
    "subtraction by adding back: $75 + 9 = 84$, which matches the product we found earlier."
    "\n</think>\n\nThe farmer sells $75$ apples, so the answer is \\boxed{75}."
)

CHINESE = (
    "<think>\n我们需要求农民卖出的苹果总数。他有 12 个篮子，每个篮子装 7 个苹果，所以先做乘法："
    "$12 \\times 7 = 84$。\n\n然后孩子们吃掉了 9 个，剩下 $84 - 9 = 75$ 个苹果拿去市场卖。"
    "我们再把减法验算一遍：$75 + 9 = 84$，和前面算出的乘积一致。\n</think>\n\n"
    "农民卖出 $75$ 个苹果，所以答案是 \\boxed{75}。"
)

# An English trace with one Chinese sentence in the middle (the s1 distillation pattern).
MIXED = ENGLISH.replace(
    "Then the children eat",
    "然后孩子们吃掉了九个苹果，我们需要从总数中减去它们，再检查结果是否合理。"
    " Then the children eat",
)

FRENCH = (
    "<think>\nIl faut trouver le nombre total de pommes vendues. Le fermier a 12 paniers et "
    "chaque panier contient 7 pommes, donc on multiplie : $12 \\times 7 = 84$.\n\nEnsuite les "
    "enfants en mangent 9, ce qui laisse $84 - 9 = 75$ pommes pour le marché.\n</think>\n\n"
    "Le fermier vend $75$ pommes, donc la réponse est \\boxed{75}."
)

TRUNCATED = ENGLISH[: ENGLISH.index("Let me double-check")] + "Let me double-check the sub"

TWO_BOXED = ENGLISH.replace(
    "the answer is \\boxed{75}.", "the answer is \\boxed{75} or \\boxed{84}."
)


def make_traces(
    texts: list[str],
    *,
    gold: str | None = "75",
    problem_ids: list[str] | None = None,
    finish: list[str] | None = None,
    question: str = "A farmer has 12 baskets of 7 apples; children eat 9. How many are sold?",
) -> pl.DataFrame:
    rows = []
    for i, text in enumerate(texts):
        p = parse_completion(text)
        rows.append(
            {
                "trace_id": f"t{i:03d}",
                "problem_id": problem_ids[i] if problem_ids else "p1",
                "thought": p.thought,
                "response": p.response,
                "predicted": p.predicted,
                "correct": None,
                "meta": json.dumps({"sample_index": i}),
                "gold": gold,
                "gold_source": "problem" if gold is not None else "none",
                "finish_reason": finish[i] if finish else "stop",
                "think_closed": p.think_closed,
                "question": question,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"correct": pl.Boolean, "gold": pl.String})
