"""`self_output`: rejection sampling. N samples per problem, voted, checked, kept if right.

All problems of a shard go to the engine in one batched call (`n = samples` per request).
Per problem, each answer's vote share is computed (answers grouped by `answer_key`); a
trace's `score` is its answer's share. When the problem has no gold answer, the majority
answer stands in for it if its share reaches `min_agreement`, and the trace says so in
`meta.gold_source = "majority"`.

Not here: checking answers (filters/answer.py) and storing (warehouse/).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Literal

import polars as pl
from pydantic import Field

from generators.answers import answer_key
from generators.base import WORKING_COLUMNS, Generated, RunContext, StrictModel
from generators.engines.base import Engine, GenRequest
from generators.prompts import build_messages, parse_completion
from warehouse.ids import digest, trace_id
from warehouse.schema import TRACES


class SelfOutputConfig(StrictModel):
    method: Literal["self_output"] = "self_output"
    samples: int = Field(8, ge=1, le=4096)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    seed: int = 0
    min_agreement: float = Field(0.5, gt=0, le=1)
    shard_size: int = Field(512, ge=1)


def request_seed(seed: int, problem_id: str) -> int:
    """Per-problem sampling seed: reproducible, and different across problems."""
    return int(digest(seed, problem_id, length=8), 16)


def self_output(
    problems: pl.DataFrame, engine: Engine, config: SelfOutputConfig, ctx: RunContext
) -> Generated:
    """Sample `config.samples` traces per problem in one engine call; vote; score.

    >>> from generators.engines.sim import SimEngine
    >>> from generators.problems.sources import load_problems
    >>> ctx = RunContext("run", "fp", "sim")
    >>> out = self_output(load_problems("builtin:arithmetic", limit=3), SimEngine(),
    ...                   SelfOutputConfig(samples=4), ctx)
    >>> out.traces.height
    12
    """
    requests = [
        GenRequest(
            messages=build_messages(q),
            n=config.samples,
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_tokens,
            seed=request_seed(config.seed, pid),
            logprobs=True,
        )
        for pid, q in zip(problems["problem_id"], problems["question"], strict=True)
    ]
    results = engine.generate(requests) if requests else []
    if len(results) != len(requests):
        raise RuntimeError(f"engine returned {len(results)} results for {len(requests)} requests")
    now = datetime.now(UTC)
    rows = []
    for problem, completions in zip(problems.iter_rows(named=True), results, strict=True):
        parsed = [parse_completion(c.text, c.reasoning) for c in completions]
        keys = [answer_key(p.predicted) for p in parsed]
        votes = Counter(k for k in keys if k is not None)
        total = len(completions)
        gold, gold_source, majority = _gold_for(problem["gold"], votes, total, parsed, keys, config)
        for i, (c, p, k) in enumerate(zip(completions, parsed, keys, strict=True)):
            meta = {
                "fingerprint": ctx.fingerprint,
                "sample_index": i,
                "samples": total,
                "finish_reason": c.finish_reason,
                "think_closed": p.think_closed,
                "cumulative_logprob": c.cumulative_logprob,
                "gold_source": gold_source,
                "majority_answer": majority[0],
                "majority_share": majority[1],
                "temperature": config.temperature,
                "seed": config.seed,
            }
            rows.append(
                {
                    "trace_id": trace_id(problem["problem_id"], "self_output", ctx.fingerprint, i),
                    "problem_id": problem["problem_id"],
                    "run_id": ctx.run_id,
                    "method": "self_output",
                    "model": ctx.model,
                    "thought": p.thought,
                    "response": p.response,
                    "predicted": p.predicted,
                    "n_tokens": c.n_tokens,
                    "score": votes[k] / total if k is not None else 0.0,
                    "created_at": now,
                    "meta": json.dumps(meta),
                    "gold": gold,
                    "gold_source": gold_source,
                    "finish_reason": c.finish_reason,
                    "think_closed": p.think_closed,
                }
            )
    schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    frame = pl.DataFrame(rows, schema={k: schema[k] for k in rows[0]} if rows else schema)
    return Generated(traces=frame)


def _gold_for(gold, votes: Counter, total: int, parsed, keys, config: SelfOutputConfig):
    """The answer traces are checked against: the problem's gold, else a qualified majority."""
    if not votes:
        majority = (None, 0.0)
    else:
        key, count = votes.most_common(1)[0]
        shown = next(p.predicted for p, k in zip(parsed, keys, strict=True) if k == key)
        majority = (shown, count / total)
    if gold is not None:
        return gold, "problem", majority
    if majority[0] is not None and majority[1] >= config.min_agreement:
        return majority[0], "majority", majority
    return None, "none", majority
