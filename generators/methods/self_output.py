"""`self_output`: rejection sampling. N samples per problem, voted, checked, kept if right.

All problems of a shard go to the engine in one batched call (`n = samples` per request).
Per problem, each answer's vote share is computed (answers grouped by `answer_key`); a
trace's `score` is its answer's share. When the problem has no gold answer, the majority
answer stands in for it if its share reaches `min_agreement`, and the trace says so in
`meta.gold_source = "majority"`. `selection` picks among the samples by `confidence` or
`best_of_n` instead (generators/selection.py); the choice is in `meta.selection`.

Not here: checking answers (filters/answer.py) and storing (warehouse/).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator
from reasonfactory.generators.base import WORKING_COLUMNS, Generated, RunContext, StrictModel
from reasonfactory.generators.engines.base import Completion, Engine, GenRequest
from reasonfactory.generators.methods.selection import (
    RulesVerifier,
    Sample,
    SelectionConfig,
    choose,
    code_pass_rates,
    full_text,
    rewards_for,
    selection_meta,
)
from reasonfactory.generators.prompts import (
    FINAL_ANSWER_PROMPT,
    SOLVE_PROMPT,
    build_messages,
    is_code_problem,
    messages_for,
    parse_completion,
)
from reasonfactory.generators.verify.code_tests import read_tests
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.ids import digest, trace_id
from reasonfactory.warehouse.schema import TRACES


class FewShot(StrictModel):
    """One worked example shown before the problem: a question and the reply to imitate."""

    question: str = Field(min_length=1)
    reply: str = Field(min_length=1)


class SelfOutputConfig(StrictModel):
    method: Literal["self_output"] = "self_output"
    samples: int = Field(8, ge=1, le=4096)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    seed: int = 0
    min_agreement: float = Field(0.5, gt=0, le=1)
    shard_size: int = Field(512, ge=1)
    selection: SelectionConfig = SelectionConfig()
    # How replies are read: r1 (`<think>...</think>` then `\boxed{}`) or final_answer (the
    # thought is the text before a final-answer phrase; generators/reply_forms.py).
    reply: Literal["r1", "final_answer"] = "r1"
    # The user turn with `{question}` in it (default: the reply form's prompt), a system
    # turn, and few-shot turns ({question, reply} each) before the problem.
    user_prompt: str | None = Field(None, description="user turn template with {question}")
    system_prompt: str | None = None
    examples: tuple[FewShot, ...] = ()

    PROMPT: ClassVar[str] = SOLVE_PROMPT  # in the run's fingerprint
    # Added after runs were stored: at their defaults they leave a run's identity as it was.
    ADDED_SETTINGS: ClassVar[tuple[str, ...]] = (
        "reply",
        "user_prompt",
        "system_prompt",
        "examples",
    )

    @field_validator("user_prompt")
    @classmethod
    def _has_question(cls, v: str | None) -> str | None:
        if v is not None and "{question}" not in v:
            raise ValueError("user_prompt must contain {question}, where the problem goes")
        return v

    def messages(self, question: str) -> tuple[dict, ...]:
        """The chat this config asks for one problem."""
        template = self.user_prompt or (
            FINAL_ANSWER_PROMPT if self.reply == "final_answer" else SOLVE_PROMPT
        )
        shots = tuple((e.question, e.reply) for e in self.examples)
        return build_messages(question, template, self.system_prompt, shots)


def request_seed(seed: int, problem_id: str) -> int:
    """Per-problem sampling seed: reproducible, and different across problems."""
    return int(digest(seed, problem_id, length=8), 16)


def self_output(
    problems: pl.DataFrame, engine: Engine, config: SelfOutputConfig, ctx: RunContext
) -> Generated:
    """Sample `config.samples` traces per problem in one engine call; vote; score.

    >>> from reasonfactory.generators.engines.sim import SimEngine
    >>> from reasonfactory.generators.problems.sources import load_problems
    >>> ctx = RunContext("run", "fp", "sim")
    >>> out = self_output(load_problems("builtin:arithmetic", limit=3), SimEngine(),
    ...                   SelfOutputConfig(samples=4), ctx)
    >>> out.traces.height
    12
    """
    requests = [
        GenRequest(
            messages=messages_for(problem, config.messages),
            n=config.samples,
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_tokens,
            seed=request_seed(config.seed, problem["problem_id"]),
            logprobs=True,
            problem_id=problem["problem_id"],
        )
        for problem in problems.iter_rows(named=True)
    ]
    results = engine.generate(requests) if requests else []
    if len(results) != len(requests):
        raise RuntimeError(f"engine returned {len(results)} results for {len(requests)} requests")
    rows = sample_rows(problems, results, config, ctx, "self_output", prompt_of=config.messages)
    schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    frame = pl.DataFrame(rows, schema={k: schema[k] for k in rows[0]} if rows else schema)
    return Generated(traces=frame)


def _code_rewards(problems, results, parsed_all, code, selection: SelectionConfig):
    """`best_of_n` with the `rules` verifier on code problems: each sample's pass rate,
    every program of the shard run in one batch; None when not asked for."""
    if selection.by != "best_of_n" or not isinstance(selection.verifier, RulesVerifier):
        return None
    if not any(code):
        return None
    keys, items = [], []
    for k, problem in enumerate(problems.iter_rows(named=True)):
        if not code[k]:
            continue
        tests = read_tests(json.loads(problem["meta"])["code"])
        for i, (c, p) in enumerate(zip(results[k], parsed_all[k], strict=True)):
            keys.append((k, i))
            items.append((tests, c, p))
    return dict(zip(keys, code_pass_rates(items), strict=True))


def require_logprobs(results: list[list[Completion]]) -> None:
    """`selection: confidence` ranks by log-probabilities: an engine that returns none for any
    sample would keep nothing and say nothing, so stop and say why."""
    answered = [c for cs in results for c in cs if c.finish_reason != "error"]
    if answered and all(c.cumulative_logprob is None for c in answered):
        raise UserError(
            f"selection: confidence needs log-probabilities, and the engine returned none for "
            f"{len(answered)} samples; serve the model with logprobs enabled (vllm serve does) "
            "or use selection: majority or best_of_n"
        )


def sample_rows(
    problems: pl.DataFrame,
    results: list[list[Completion]],
    config: SelfOutputConfig,
    ctx: RunContext,
    method: str,
    extra_meta: Callable[[Completion], dict] | None = None,
    prompt_of: Callable[[str], tuple[dict, ...]] | None = None,
) -> list[dict]:
    """One trace row per sampled completion: parsed, voted and selected per problem.

    Shared by every generator that samples a problem N times and keeps all samples
    (`self_output`, `distill`). `results[k]` are the completions for `problems[k]`; `config`
    is any config with `selection`, `min_agreement`, `temperature`, `seed` and `max_tokens`;
    `extra_meta(completion)` adds the generator's own `meta` keys; `prompt_of(question)`, the
    chat the engine was asked, is kept in `meta.prompt` (an export's user turn, the `sft` view).
    """
    if config.selection.by == "confidence":
        require_logprobs(results)
    now = datetime.now(UTC)
    rows = []
    code = [is_code_problem(p) for p in problems.iter_rows(named=True)]
    reply = getattr(config, "reply", "r1")
    parsed_all = [
        [parse_completion(c.text, c.reasoning, reply, code=k) for c in cs]
        for cs, k in zip(results, code, strict=True)
    ]
    code_rewards = _code_rewards(problems, results, parsed_all, code, config.selection)
    rewards = iter(
        rewards_for(
            config.selection,
            [
                (q, full_text(c))
                for q, cs in zip(problems["question"], results, strict=True)
                for c in cs
            ],
        )
    )
    for k, (problem, completions) in enumerate(
        zip(problems.iter_rows(named=True), results, strict=True)
    ):
        parsed = parsed_all[k]
        samples = [
            Sample(p, c.finish_reason, c.n_tokens, c.cumulative_logprob, next(rewards))
            for c, p in zip(completions, parsed, strict=True)
        ]
        if code_rewards is not None and code[k]:
            samples = [replace(s, reward=code_rewards[(k, i)]) for i, s in enumerate(samples)]
        choice = choose(samples, problem["gold"], config.selection, config.min_agreement)
        asked = {"prompt": list(messages_for(problem, prompt_of))} if prompt_of else {}
        for i, (c, p) in enumerate(zip(completions, parsed, strict=True)):
            meta = {
                "fingerprint": ctx.fingerprint,
                "sample_index": i,
                "samples": len(completions),
                "finish_reason": c.finish_reason,
                "think_closed": p.think_closed,
                "cumulative_logprob": c.cumulative_logprob,
                "gold_source": choice.gold_source,
                "majority_answer": choice.majority[0],
                "majority_share": choice.majority[1],
                "temperature": config.temperature,
                "seed": config.seed,
                "max_tokens": c.meta.get("max_tokens", config.max_tokens),
                "request_key": c.meta.get("request_key"),
                # the engine's token counts (vllm, openai), which `stats` sums: prompt tokens
                # per sample, as an API bills them
                "tokens_in": c.meta.get("tokens_in"),
                "tokens_out": c.meta.get("tokens_out", c.n_tokens),
                "selection": selection_meta(config.selection, choice, i),
                **(extra_meta(c) if extra_meta else {}),
                **asked,
            }
            rows.append(
                {
                    "trace_id": trace_id(problem["problem_id"], method, ctx.fingerprint, i),
                    "problem_id": problem["problem_id"],
                    "run_id": ctx.run_id,
                    "method": method,
                    "model": ctx.model,
                    "thought": p.thought,
                    "response": p.response,
                    "predicted": p.predicted,
                    "n_tokens": c.n_tokens,
                    "score": choice.scores[i],
                    "created_at": now,
                    "meta": json.dumps(meta),
                    "gold": choice.gold,
                    "gold_source": choice.gold_source,
                    "finish_reason": c.finish_reason,
                    "think_closed": p.think_closed,
                    "selected": choice.selected == i,
                }
            )
    return rows
