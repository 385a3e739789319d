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
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
from reasonfactory.generators.engines.base import Completion, Engine, GenRequest
from reasonfactory.warehouse.ids import digest
from reasonfactory.warehouse.schema import COMPLETIONS

# keys -> stored rows of the `completions` table for those keys (any subset, any order).
Lookup = Callable[[list[str]], pl.DataFrame]


def sample_key(engine_id: str, req: GenRequest, index: int) -> str:
    """The content key of sample `index` of `req` (0-based within the request).

    >>> r = GenRequest(prompt="2 + 2 =", n=4, seed=7, max_tokens=16)
    >>> sample_key("e", r, 3) == sample_key("e", GenRequest(prompt="2 + 2 =", seed=7,
    ...     first_sample=3, max_tokens=4096), 0)
    True
    """
    return "c_" + digest(
        engine_id,
        json.dumps(req.messages, sort_keys=True, ensure_ascii=False),
        req.prefix,
        req.prompt,
        req.temperature,
        req.top_p,
        json.dumps(list(req.stop)),
        req.seed,
        req.first_sample + index,
        *(["logprobs"] if req.logprobs else []),  # a sample without them cannot stand in
        length=24,
    )


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


class CachedEngine:
    """Wraps an engine: serves stored samples, asks the engine (in one batched call) for the
    rest, and records the new ones for the flow to store.

    Every completion it returns carries `meta["request_key"]` (its sample key) and
    `meta["max_tokens"]`; reused ones also `meta["reused"] = True`.
    """

    def __init__(self, engine: Engine, engine_id: str, lookup: Lookup | None = None):
        self.engine = engine
        self.model = engine.model
        self.engine_id = engine_id
        self.lookup = lookup
        self.reused = 0
        self._fresh: list[dict] = []

    def generate(self, requests: list[GenRequest]) -> list[list[Completion]]:
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
                else:
                    missing.append(k)
            for start, stop in _runs(missing):
                asks.append(replace(req, n=stop - start, first_sample=req.first_sample + start))
                slots.append((i, start))
        results = self.engine.generate(asks) if asks else []
        if len(results) != len(asks):
            raise RuntimeError(f"engine returned {len(results)} results for {len(asks)} requests")
        now = datetime.now(UTC)
        for (i, start), ask, completions in zip(slots, asks, results, strict=True):
            if len(completions) != ask.n:
                raise RuntimeError(f"engine returned {len(completions)} completions for n={ask.n}")
            for j, c in enumerate(completions):
                key = keys[i][start + j]
                c = replace(c, meta={**c.meta, "request_key": key, "max_tokens": ask.max_tokens})
                out[i][start + j] = c
                if c.finish_reason != "error":  # a failed request is asked again next time
                    self._fresh.append(_row(key, self.engine_id, self.model, c, now))
        return out  # type: ignore[return-value]

    def take_fresh(self) -> pl.DataFrame:
        """The completions made since the last call, as `completions` rows (then forgets them)."""
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
