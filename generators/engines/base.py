"""The engine interface every generator talks to: batched by contract.

A generator hands `Engine.generate` every request it can at once (all problems of a shard,
all frontier nodes of all trees); the engine returns, per request, `n` completions. Engines
never see problems, recipes or the warehouse: only prompts in, text out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class GenRequest:
    """One prompt to sample `n` completions for.

    `messages` is a chat (`[{"role": "user", "content": ...}]`); `prefix` is assistant text
    already written (a tree node's steps so far) that the completion continues.
    `prompt` is a raw completion-style prompt for engines and models without a chat template.
    `first_sample` numbers the samples: completion `k` of this request is sample
    `first_sample + k` of the series that `seed` starts, so sample 5 asked alone
    (`n=1, first_sample=5`) is the same sample as the sixth of `n=8` (what lets a re-run
    redo only the samples it needs). vLLM seeds sample `i` with `seed + i`; engines follow it.
    """

    messages: tuple[dict, ...] = ()
    prefix: str = ""
    prompt: str | None = None
    n: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_tokens: int = 2048
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    first_sample: int = 0
    include_stop: bool = False
    # The problem this request serves: the run counts each problem's tokens by it (the
    # `progress` table). Not sent to the engine, and not part of any identity.
    problem_id: str = ""

    def user_text(self) -> str:
        """The last user message (or the raw prompt): where the problem statement sits."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return m.get("content", "")
        return self.prompt or ""


@dataclass(frozen=True)
class Completion:
    """One sampled continuation. `finish_reason` is `stop`, `length` (truncated) or `error`
    (the engine gave up on it after its retries; `meta["error"]` says why)."""

    text: str
    finish_reason: Literal["stop", "length", "error"] = "stop"
    stop_reason: str | None = None
    n_tokens: int = 0
    cumulative_logprob: float | None = None
    reasoning: str | None = None
    meta: dict = field(default_factory=dict)


OnSample = Callable[[int, int, Completion], None]
"""`on_sample(i, k, completion)`: completion `k` (0 .. n-1) of request `i` is ready."""


@runtime_checkable
class Engine(Protocol):
    """Anything that turns a batch of requests into completions, `n` per request, in order."""

    model: str

    def generate(self, requests: list[GenRequest]) -> list[list[Completion]]: ...


class EngineError(Exception):
    """The engine cannot serve a request (e.g. the sim asked a problem outside its families)."""
