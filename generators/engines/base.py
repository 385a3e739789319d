"""The engine interface every generator talks to: batched by contract.

A generator hands `Engine.generate` every request it can at once (all problems of a shard,
all frontier nodes of all trees); the engine returns, per request, `n` completions. Engines
never see problems, recipes or the warehouse: only prompts in, text out.

A caller that wants each completion as soon as it exists (to store a paid teacher reply
within seconds of its arrival, not at the end of a batch) passes `on_sample`; every engine
hands its completions to it through `SampleFeed`, which decides what a raising callback does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

log = logging.getLogger("reasonfactory.engines")


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
    """Anything that turns a batch of requests into completions, `n` per request, in order.

    `on_sample`, when given, is called once per completion with (request index, sample index
    within that request's `n`, completion), as soon as that completion is ready and at the
    latest before `generate` returns; error completions (`finish_reason="error"`) included.
    It may be called from any thread (the `openai` engine calls it on its event-loop thread
    as each reply is read, so it should be quick: hand the completion on, do not block); the
    sim, vllm and predictions engines call it for every completion just before returning.
    A callback that raises does not stop the batch (see `SampleFeed`): the other requests
    run on, the callback still gets their completions, and `generate` raises the first
    exception once the batch is done, instead of returning.
    """

    model: str

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]: ...

    def wants_more(self) -> bool:
        """Whether the engine's slots are about to idle: an engine that keeps a bounded number
        of requests in flight across calls (`openai`) has fewer waiting for a slot than it
        has slots. A run then starts its next shard early. False for one that takes each
        batch whole."""
        ...

    def cancel(self) -> None:
        """Stop the requests in flight now, from any thread (Ctrl-C)."""
        ...


class WholeBatches:
    """For engines that take each `generate` batch whole (sim, vllm, a predictions file):
    nothing waits for a slot between calls, and nothing in flight can be cut short."""

    def wants_more(self) -> bool:
        return False

    def cancel(self) -> None:
        return None


class SampleFeed:
    """Hands an engine's completions to its caller's `on_sample`, one call each.

    A callback that raises cannot kill the engine's other requests: `send` keeps the first
    exception (later ones are logged) and returns; the engine goes on, and calls `raise_first`
    when its batch is done, so `generate` raises that exception instead of returning.
    Thread-safe: an engine may send from any thread.

    >>> seen = []
    >>> feed = SampleFeed(lambda i, k, c: seen.append((i, k, c.text)))
    >>> feed.send_all([[Completion("a"), Completion("b")], [Completion("c")]])
    >>> seen
    [(0, 0, 'a'), (0, 1, 'b'), (1, 0, 'c')]
    >>> feed = SampleFeed(lambda i, k, c: 1 / k)
    >>> feed.send_all([[Completion("a"), Completion("b")]])  # the second call still runs
    >>> feed.raise_first()
    Traceback (most recent call last):
    ZeroDivisionError: division by zero
    """

    def __init__(self, on_sample: OnSample | None):
        self.on_sample = on_sample
        self.error: Exception | None = None
        self._lock = threading.Lock()

    def send(self, request: int, sample: int, completion: Completion) -> None:
        if self.on_sample is None:
            return
        try:
            self.on_sample(request, sample, completion)
        except Exception as exc:
            with self._lock:
                first, self.error = self.error is None, self.error or exc
            if not first:
                log.warning("on_sample failed again (%d, %d): %r", request, sample, exc)

    def send_all(self, out: list[list[Completion]]) -> None:
        """Every completion of a finished batch, in order (engines that finish all at once)."""
        for i, completions in enumerate(out):
            for k, completion in enumerate(completions):
                self.send(i, k, completion)

    def raise_first(self) -> None:
        """Raise the first exception `on_sample` raised, if it did (after the batch)."""
        if self.error is not None:
            raise self.error


class EngineError(Exception):
    """The engine cannot serve a request (e.g. the sim asked a problem outside its families)."""
