"""`distill`: a teacher (an R1-class reasoning model) answers each problem; its thinking and
its answer are kept separately, with what they cost.

One request per problem with `samples` completions, all problems of a shard in one batched
engine call. The teacher gets an R1-style system prompt and a user prompt asking for a boxed
answer (both overridable; `system_prompt: null` sends none, as DeepSeek recommends for R1).
Thinking comes from the server's `reasoning_content` when it splits it off, else from the
inline `<think>...</think>`; a teacher whose template opened `<think>` itself (no opening
tag in the text) is read the same way. A sample cut off at `max_tokens` is stored and
rejected as `truncated` by the format filter; raising `max_tokens` later redoes only those
(generators/resume.py). Per trace, `meta` records `tokens_in`, `tokens_out` (and
`reasoning_tokens` when the server counts them), retries and latency; `n_tokens` is the
completion tokens. With several samples, `selection` picks among them (generators/selection.py).

Not here: checking answers (filters/), storing (warehouse/), talking to the server (engines/).
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import WORKING_COLUMNS, Generated, RunContext, StrictModel
from reasonfactory.generators.engines.base import Completion, Engine, GenRequest
from reasonfactory.generators.methods.selection import (
    SelectionConfig,
)
from reasonfactory.generators.methods.self_output import request_seed, sample_rows
from reasonfactory.generators.prompts import is_code_problem
from reasonfactory.warehouse.schema import TRACES

R1_SYSTEM_PROMPT = (
    "You are a helpful assistant. The user asks a question, and you solve it. You first think "
    "about the reasoning process in your mind and then provide the user with the answer. The "
    "reasoning process is enclosed within <think> </think> tags, followed by the answer: "
    "<think> reasoning process here </think> answer here."
)
R1_USER_TEMPLATE = (
    "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
)
# A code problem's user turn (`meta.checker` = `code`): fixed, not a setting, so the runs
# of every existing recipe keep their identity.
R1_CODE_TEMPLATE = (
    "{question}\n\nPlease reason step by step, then give your complete solution as one "
    "```python code block."
)


class DistillConfig(StrictModel):
    method: Literal["distill"] = "distill"
    samples: int = Field(1, ge=1, le=1024)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, ge=1)
    seed: int = 0
    system_prompt: str | None = R1_SYSTEM_PROMPT
    user_template: str = Field(
        R1_USER_TEMPLATE, description="the user turn; {question} is replaced by the problem"
    )
    min_agreement: float = Field(0.5, gt=0, le=1)
    selection: SelectionConfig = SelectionConfig()
    shard_size: int = Field(256, ge=1)


def teacher_messages(question: str, config: DistillConfig, code: bool = False) -> tuple[dict, ...]:
    """The chat sent to the teacher (`code`: the problem is judged by tests).

    >>> teacher_messages("1+1?", DistillConfig(system_prompt=None))[0]["content"][:5]
    '1+1?\\n'
    """
    template = R1_CODE_TEMPLATE if code else config.user_template
    user = {"role": "user", "content": template.replace("{question}", question)}
    if config.system_prompt is None:
        return (user,)
    return ({"role": "system", "content": config.system_prompt}, user)


def distill(
    problems: pl.DataFrame, engine: Engine, config: DistillConfig, ctx: RunContext
) -> Generated:
    """Ask the teacher `config.samples` times per problem in one engine call; select; keep all.

    >>> from reasonfactory.generators.engines.sim import SimEngine
    >>> from reasonfactory.generators.problems.sources import load_problems
    >>> out = distill(load_problems("builtin:arithmetic", limit=2), SimEngine(),
    ...               DistillConfig(samples=3), RunContext("run", "fp", "sim"))
    >>> out.traces.height, out.traces["thought"][0].startswith("Step 1:")
    (6, True)
    """
    requests = [
        GenRequest(
            messages=teacher_messages(problem["question"], config, is_code_problem(problem)),
            n=config.samples,
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_tokens,
            seed=request_seed(config.seed, problem["problem_id"]),
            logprobs=config.selection.by == "confidence",
            problem_id=problem["problem_id"],
        )
        for problem in problems.iter_rows(named=True)
    ]
    results = engine.generate(requests) if requests else []
    if len(results) != len(requests):
        raise RuntimeError(f"engine returned {len(results)} results for {len(requests)} requests")
    rows = sample_rows(problems, results, config, ctx, "distill", _teacher_meta(ctx))
    schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    return Generated(traces=pl.DataFrame(rows, schema={k: schema[k] for k in schema}))


def _teacher_meta(ctx: RunContext):
    """What a teacher's answer cost and where its thinking came from, for `meta`."""

    def meta(c: Completion) -> dict:
        return {
            "teacher": ctx.model,
            "reasoning_source": "split" if c.reasoning is not None else "inline",
            "reasoning_tokens": c.meta.get("reasoning_tokens"),
            "retries": c.meta.get("retries"),
            "latency_s": c.meta.get("latency_s"),
            "error": c.meta.get("error"),
        }

    return meta
