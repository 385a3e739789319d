"""Content-keyed resume: what identifies one sample, when a stored one can stand in for a new
one, and `CachedEngine`, which serves stored samples and asks its engine only for the rest.

The identity rule (README, "Resume"):
- A *sample* is identified by its content: the engine's identity (kind, model and the settings
  that change its output), the request as sent (chat messages, assistant prefix, raw prompt),
  the sampling parameters that change the text (temperature, top_p, stop strings, seed), its
  sample number and whether log-probabilities were asked for (a sample stored without them
  cannot serve `selection: confidence`). `max_tokens`, `n`, shard size, concurrency, retries,
  timeouts, filters and selection are not part of it.
- A stored sample stands in for a new request unless it was cut off (`finish_reason=length`)
  at a smaller `max_tokens` than the request now allows. Failed requests are never stored.

So a re-run reuses every stored sample whose content matches, a raised `max_tokens` re-asks
only the truncated samples, and a new selection or filter costs no engine call.

Not here: the warehouse (the flow hands `CachedEngine` a lookup function and stores what it
records), or deciding which problems a run still has to do (the flow's progress ledger).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
from reasonfactory.generators.engines.base import Completion, Engine, GenRequest, OnSample
from reasonfactory.generators.identity import sample_key
from reasonfactory.warehouse.schema import COMPLETIONS

# keys -> stored rows of the `completions` table for those keys (any subset, any order).
Lookup = Callable[[list[str]], pl.DataFrame]


def reusable(finish_reason: str, stored_max_tokens: int | None, max_tokens: int) -> bool:
    """Whether a stored sample answers a request allowing `max_tokens`.

    >>> reusable("stop", 512, 4096), reusable("length", 512, 4096), reusable("length", 4096, 512)
    (True, False, True)
    """
    if finish_reason == "stop":
        return True
    if finish_reason == "length":
        return stored_max_tokens is not None and stored_max_tokens >= max_tokens
    return False


def needs_rerun(max_tokens: int | None) -> pl.Expr:
    """Over `progress` rows: a finished problem to do again (failed samples, or samples
    truncated below the `max_tokens` asked now)."""
    failed = pl.col("n_failed").fill_null(0) > 0
    if max_tokens is None:
        return failed
    truncated = (pl.col("n_truncated").fill_null(0) > 0) & (
        pl.col("max_tokens").fill_null(0) < max_tokens
    )
    return failed | truncated


# Completions rows as they arrive: where a run stores them within seconds (flows/committer.py).
Sink = Callable[[list[dict]], None]


class CachedEngine:
    """Wraps an engine: serves stored samples, asks the engine (in one batched call) for the
    rest, and hands each new one on as it arrives: to `sink` (a run stores it within
    seconds, so a kill loses seconds of paid replies, not a shard), or, without a sink, kept
    for `take_fresh`. It also counts, per problem (`GenRequest.problem_id`), the completion
    tokens the engine generated, those served from the store, and the prompt tokens of what
    the engine answered, where it reports them (`tokens_by_problem`).

    Every completion it returns carries `meta["request_key"]` (its sample key) and
    `meta["max_tokens"]`; reused ones also `meta["reused"] = True`.
    """

    def __init__(
        self,
        engine: Engine,
        engine_id: str,
        lookup: Lookup | None = None,
        sink: Sink | None = None,
    ):
        self.engine = engine
        self.model = engine.model
        self.engine_id = engine_id
        self.lookup = lookup
        self.sink = sink
        self.reused = 0
        self._fresh: list[dict] = []
        self._tokens: dict[str, list[int]] = {}  # problem_id -> [generated, reused]
        self._lock = threading.Lock()  # completions arrive on the engine's own thread

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        keys = [[sample_key(self.engine_id, r, k) for k in range(r.n)] for r in requests]
        stored = self._stored([k for ks in keys for k in ks])
        out: list[list[Completion | None]] = [[None] * r.n for r in requests]
        asks: list[GenRequest] = []
        slots: list[tuple[int, int]] = []
        for i, (req, ks) in enumerate(zip(requests, keys, strict=True)):
            missing = []
            for k, key in enumerate(ks):
                hit = stored.get(key)
                if hit is not None and reusable(
                    hit.finish_reason, hit.meta.get("max_tokens"), req.max_tokens
                ):
                    out[i][k] = hit
                    self.reused += 1
                    self._count(req.problem_id, 1, hit.n_tokens)
                    if on_sample is not None:
                        on_sample(i, k, hit)
                else:
                    missing.append(k)
            for start, stop in _runs(missing):
                asks.append(replace(req, n=stop - start, first_sample=req.first_sample + start))
                slots.append((i, start))
        arrived: set[tuple[int, int]] = set()

        def take(a: int, j: int, c: Completion) -> None:
            """Completion `j` of ask `a` is in: key it, hand it on, count its tokens."""
            i, start = slots[a]
            key = keys[i][start + j]
            c = replace(c, meta={**c.meta, "request_key": key, "max_tokens": asks[a].max_tokens})
            with self._lock:
                if (a, j) in arrived:
                    return
                arrived.add((a, j))
                out[i][start + j] = c
                self._count(requests[i].problem_id, 0, c.n_tokens)
                self._count_prompt(requests[i].problem_id, c.meta.get("tokens_in"))
                row = None
                if c.finish_reason != "error":  # a failed request is asked again next time
                    row = _row(key, self.engine_id, self.model, c, datetime.now(UTC))
                    if self.sink is None:
                        self._fresh.append(row)
            if row is not None and self.sink is not None:
                self.sink([row])
            if on_sample is not None:
                on_sample(i, start + j, c)

        results = self.engine.generate(asks, on_sample=take) if asks else []
        if len(results) != len(asks):
            raise RuntimeError(f"engine returned {len(results)} results for {len(asks)} requests")
        for a, (ask, completions) in enumerate(zip(asks, results, strict=True)):
            if len(completions) != ask.n:
                raise RuntimeError(f"engine returned {len(completions)} completions for n={ask.n}")
            for j, c in enumerate(completions):
                take(a, j, c)  # an engine that reports nothing as it goes: all now
        return out  # type: ignore[return-value]

    def _count(self, problem_id: str, which: int, tokens: int) -> None:
        account = self._tokens.setdefault(problem_id, [0, 0, None])
        account[which] += tokens or 0

    def _count_prompt(self, problem_id: str, tokens: object) -> None:
        """Prompt tokens stay unknown (None) until the engine reports some: `stats` must say
        `?` rather than 0 for an engine that reports none."""
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            account = self._tokens.setdefault(problem_id, [0, 0, None])
            account[2] = (account[2] or 0) + tokens

    def tokens_by_problem(self) -> pl.DataFrame:
        """Per problem: completion tokens the engine generated, those served from the store
        (what the method used: a re-run served from the store costs what it did), and the
        prompt tokens of the requests the engine answered (null where it reported none; a
        stored sample served again costs no prompt)."""
        rows = [(p, g, r, q) for p, (g, r, q) in self._tokens.items()]
        return pl.DataFrame(
            rows,
            schema={
                "problem_id": pl.String,
                "tokens_generated": pl.Int64,
                "tokens_reused": pl.Int64,
                "tokens_prompt": pl.Int64,
            },
            orient="row",
        )

    def take_fresh(self) -> pl.DataFrame:
        """The completions made since the last call, as `completions` rows (then forgets
        them); empty when a sink took them as they arrived."""
        with self._lock:
            rows, self._fresh = self._fresh, []
        return pl.DataFrame(rows, schema=COMPLETIONS.polars_schema)

    def _stored(self, keys: list[str]) -> dict[str, Completion]:
        if self.lookup is None or not keys:
            return {}
        frame = self.lookup(keys)
        return {row["request_key"]: _completion(row) for row in frame.iter_rows(named=True)}


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Contiguous ranges `[start, stop)` covering sorted indices: [0, 1, 3] -> [(0, 2), (3, 4)]."""
    runs: list[tuple[int, int]] = []
    for k in indices:
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


def _row(key: str, engine_id: str, model: str, c: Completion, now: datetime) -> dict:
    return {
        "request_key": key,
        "engine": engine_id,
        "model": model,
        "text": c.text,
        "reasoning": c.reasoning,
        "finish_reason": c.finish_reason,
        "stop_reason": c.stop_reason,
        "n_tokens": c.n_tokens,
        "cumulative_logprob": c.cumulative_logprob,
        "max_tokens": c.meta.get("max_tokens"),
        "created_at": now,
        "meta": json.dumps(c.meta, default=str),
    }


def _completion(row: dict) -> Completion:
    meta = json.loads(row["meta"]) if row["meta"] else {}
    meta.update(request_key=row["request_key"], max_tokens=row["max_tokens"], reused=True)
    return Completion(
        text=row["text"],
        finish_reason=row["finish_reason"],
        stop_reason=row["stop_reason"],
        n_tokens=row["n_tokens"] or 0,
        cumulative_logprob=row["cumulative_logprob"],
        reasoning=row["reasoning"],
        meta=meta,
    )
