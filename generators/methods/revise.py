"""`revise`: sequential revision with external feedback, batched across problems.

Attempt 1 is sampled with the solve prompt. Each attempt is checked by our verifiers: the
first thought step with a false arithmetic claim (`check_equations`), else a missing boxed
answer, else an answer that does not match the gold (`check_answer`). The first finding is
the feedback (`Step 3 is wrong: 22 * 3 is 66, not 76.`); attempt k+1 is asked in the same
chat after the previous attempt, with `REVISE_PROMPT` (the feedback, then the problem again).
A problem stops at an attempt with no finding or after `attempts`. Every round is one engine
call for all problems still revising.

One trace per problem. `meta.chain` keeps every attempt (text, feedback, tokens); the trace's
training form is `form`: `final`, the last attempt alone, or `chain`, one long R1 thought
holding every attempt's reasoning with the feedback between them (`Wait: <feedback> Let me
redo it.`) and the last attempt's answer as the response. `n_tokens` counts every attempt.

Not here: intrinsic feedback (the model critiquing itself).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import WORKING_COLUMNS, Generated, RunContext, StrictModel
from reasonfactory.generators.engines.base import Engine, GenRequest
from reasonfactory.generators.methods.tree.rows import TRACE_COLUMNS
from reasonfactory.generators.prompts import STEP_BOUNDARY, build_messages, parse_completion
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.steps import check_equations
from reasonfactory.warehouse.ids import digest, trace_id
from reasonfactory.warehouse.schema import TRACES

REVISE_PROMPT = (
    "A check of your solution above found: {feedback}\n"
    "Write a corrected solution from the start, in the same format.\n\nProblem: {question}"
)


class ReviseConfig(StrictModel):
    method: Literal["revise"] = "revise"
    attempts: int = Field(4, ge=1, le=32, description="most attempts per problem (K)")
    feedback: Literal["external"] = "external"
    form: Literal["final", "chain"] = "final"
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    seed: int = 0
    shard_size: int = Field(256, ge=1)


def feedback_for(text: str, gold: str | None) -> str | None:
    """What our verifiers find wrong with an attempt (the first finding), or None.

    >>> feedback_for("<think>\\nStep 1: 2 + 2 = 5.\\n</think>\\n\\n\\\\boxed{5}", "4")
    'Step 1 is wrong: 2 + 2 is 4, not 5.'
    >>> feedback_for("<think>\\nStep 1: 2 + 2 = 4.\\n</think>\\n\\n\\\\boxed{4}", "4") is None
    True
    """
    parsed = parse_completion(text)
    steps = [s.strip() for s in parsed.thought.split(STEP_BOUNDARY) if s.strip()]
    for i, step in enumerate(steps):
        check = check_equations(step)
        if check.ok is False:
            return f"Step {i + 1} is wrong: {check.detail}."
    if parsed.predicted is None:
        return "The solution states no final answer in \\boxed{}."
    if gold is not None and check_answer(gold, parsed.predicted) is not Outcome.CORRECT:
        return f"The final answer {parsed.predicted} is wrong."
    return None


def revise(
    problems: pl.DataFrame, engine: Engine, config: ReviseConfig, ctx: RunContext
) -> Generated:
    """Revise every problem's attempt until our checks pass or `attempts` run out."""
    states = [
        {"p": p, "messages": build_messages(p["question"]), "chain": [], "done": False}
        for p in problems.iter_rows(named=True)
    ]
    for k in range(config.attempts):
        live = [s for s in states if not s["done"]]
        if not live:
            break
        requests = [
            GenRequest(
                messages=s["messages"],
                n=1,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_tokens,
                seed=int(digest(config.seed, s["p"]["problem_id"], k, "revise", length=8), 16),
                problem_id=s["p"]["problem_id"],
            )
            for s in live
        ]
        results = engine.generate(requests)
        for s, completions in zip(live, results, strict=True):
            c = completions[0]
            found = feedback_for(c.text, s["p"].get("gold"))
            s["chain"].append(
                {"attempt": k + 1, "text": c.text, "feedback": found, "n_tokens": c.n_tokens,
                 "finish_reason": c.finish_reason}
            )  # fmt: skip
            s["done"] = found is None
            q = s["p"]["question"]
            s["messages"] = (
                *s["messages"],
                {"role": "assistant", "content": c.text},
                {"role": "user", "content": REVISE_PROMPT.format(feedback=found, question=q)},
            )
    now = datetime.now(UTC)
    rows = [_row(s, config, ctx, now) for s in states]
    schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    return Generated(traces=pl.DataFrame(rows, schema={k: schema[k] for k in TRACE_COLUMNS}))


def _row(s: dict, config: ReviseConfig, ctx: RunContext, now: datetime) -> dict:
    p, chain = s["p"], s["chain"]
    last = parse_completion(chain[-1]["text"])
    thought = last.thought
    if config.form == "chain":
        parts = []
        for a in chain:
            parts.append(parse_completion(a["text"]).thought.strip())
            if a["feedback"] is not None and a is not chain[-1]:
                parts.append(f"Wait: {a['feedback']} Let me redo it.")
        thought = STEP_BOUNDARY.join(parts)
    meta = {
        "fingerprint": ctx.fingerprint,
        "chain": chain,
        "attempts": len(chain),
        "fixed": len(chain) > 1 and chain[-1]["feedback"] is None,
        "form": config.form,
        "gold_source": "problem" if p.get("gold") is not None else "none",
        "temperature": config.temperature,
        "seed": config.seed,
    }
    return {
        "trace_id": trace_id(p["problem_id"], "revise", ctx.fingerprint, 0),
        "problem_id": p["problem_id"],
        "run_id": ctx.run_id,
        "method": "revise",
        "model": ctx.model,
        "thought": thought,
        "response": last.response,
        "predicted": last.predicted,
        "n_tokens": sum(a["n_tokens"] for a in chain),
        "score": None,
        "created_at": now,
        "meta": json.dumps(meta),
        "gold": p.get("gold"),
        "gold_source": meta["gold_source"],
        "finish_reason": chain[-1]["finish_reason"],
        "think_closed": last.think_closed,
    }
