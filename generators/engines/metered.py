"""Count what a generator asks of its engine: calls, requests, completions, tokens, seconds.

Wraps any `Engine`; the flow reports these per run (share of wall time spent in the engine)
and the benchmarks compare calls made with the one-request-per-node alternative.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from reasonfactory.generators.engines.base import Completion, Engine, GenRequest, OnSample


@dataclass
class EngineMeter:
    calls: int = 0
    requests: int = 0
    completions: int = 0
    seconds: float = 0.0
    tokens: int = 0  # generated (completion) tokens: the generation budget a method spends


class MeteredEngine:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.model = engine.model
        self.meter = EngineMeter()

    def cancel(self) -> None:
        """Stop the engine's requests in flight (the `openai` engine has some)."""
        self.engine.cancel()

    def wants_more(self) -> bool:
        return self.engine.wants_more()

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        start = time.perf_counter()
        out = self.engine.generate(requests, on_sample=on_sample)
        self.meter.seconds += time.perf_counter() - start
        self.meter.calls += 1
        self.meter.requests += len(requests)
        self.meter.completions += sum(len(c) for c in out)
        self.meter.tokens += sum(x.n_tokens for c in out for x in c)
        return out
