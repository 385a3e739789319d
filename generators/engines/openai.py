"""The `openai` engine: any OpenAI-compatible server (vllm serve, SGLang, hosted teachers).

The only module that speaks HTTP. A batch becomes one HTTP request per sample (hosted
reasoning models ignore `n`, and separate requests spread over the concurrency limit), sent
with aiohttp, at most `concurrency` in flight, shared by every call to the engine (calls
from several threads at once run on one event loop). aiohttp rather than the official `openai`
client (httpx underneath): at 64 requests in flight the latter spends ~5x more CPU per
request, which caps a fast local server well below what it can serve (bench/bench_engines.py).
Retries are tenacity's: exponential backoff with jitter (0.5 s doubling, at most 8 s) on
408/409/429/5xx, timeouts and dropped connections, waiting what `Retry-After` asks instead
when the server says (up to 120 s); `timeout` bounds each attempt.

A request that still fails after its retries comes back as `finish_reason="error"` with the
reason in `meta["error"]` (the rest of the batch is kept; the flow asks for it again next
run). A 200 reply that is not what the API promises (a proxy's HTML page, no `choices`, a
choice without a message) is retried like a 5xx, then is that request's error. A request
the server rejects for its content (400/413/422: vLLM answers 400 when prompt + max_tokens
exceeds max_model_len) is that request's error at once, with the server's message: its
problem is rejected as `engine_error`, the batch and the run go on. Only a refusal of the
whole client (401/403/404: key or model) stops the run with a clear message.

Thinking: read from `reasoning_content` / `reasoning` when the server splits it off; else it
stays inline (`<think>...</think>`) in the text and `generators.prompts.parse_completion`
splits it. Token usage (tokens in/out, reasoning tokens), retries and latency go in
`Completion.meta`. The API key is read from the environment variable the recipe names, when
the engine is built, and kept only in the request header: never in a config, a meta or the
warehouse.

`on_sample` gets each completion on the engine's event-loop thread as soon as its reply is
read (error completions too), while the batch's other requests are still in flight.
`post_each` sends other JSON requests with the same retries and concurrency (the reward
endpoint of `reward_endpoint.py`).

Not here: the request bodies and the reading of replies (pure functions in `openai_api.py`),
choosing prompts, parsing answers, storing.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import aiohttp
from reasonfactory.generators.engines.base import Completion, GenRequest, OnSample, SampleFeed
from reasonfactory.generators.engines.openai_api import (
    CONTENT_STATUS,
    RETRY_STATUS,
    Refused,
    Retryable,
    backoff,
    error_message,
    parse_reply,
    request_body,
    retry_after,
)
from reasonfactory.warehouse.errors import UserError
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt

log = logging.getLogger("reasonfactory.engines.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_LOOP_LOCK = threading.Lock()


def _wait(state) -> float:
    exc = state.outcome.exception() if state.outcome else None
    return backoff(state.attempt_number, getattr(exc, "retry_after", None))


@dataclass(frozen=True)
class _Job:
    request: int
    sample: int
    req: GenRequest


class OpenAIEngine:
    """Bounded-concurrency async client of an OpenAI-compatible server.

    >>> eng = OpenAIEngine("my-model", base_url="http://127.0.0.1:8000/v1")  # doctest: +SKIP
    >>> eng.generate([GenRequest(prompt="1 + 1 =")])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        endpoint: str = "chat",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 64,
        timeout: float = 600.0,
        max_retries: int = 6,
        extra_body: dict | None = None,
    ):
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra_body = dict(extra_body or {})
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env)
        if not key and base_url is None:
            raise UserError(
                f"engine openai: no API key in ${api_key_env} (engine.api_key_env) and no "
                "engine.base_url; set the variable, or point base_url at your own server"
            )
        # A server that needs no key (vllm serve, SGLang) gets none.
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limit: asyncio.Semaphore | None = None
        self._waiting = 0  # requests asked for and not yet holding a slot
        self._waiting_lock = threading.Lock()

    def backlog(self) -> int:
        """Requests asked for (by any thread) that wait for one of the `concurrency` slots:
        while it is at least `concurrency`, a slot that frees is refilled at once."""
        return self._waiting

    def wants_more(self) -> bool:
        """Fewer requests wait than there are slots: without more work, a slot that frees
        would idle (a run then starts its next shard, flows/runners.py)."""
        return self._waiting < self.concurrency

    def _started(self, left: list[int], n: int = 1) -> None:
        """`n` requests of one call (`left` of them still waiting) got a slot, or never will."""
        with self._waiting_lock:
            n = min(n, left[0])
            left[0] -= n
            self._waiting -= n

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        jobs = [_Job(i, k, r) for i, r in enumerate(requests) for k in range(r.n)]
        if not jobs:
            return [[] for _ in requests]
        left = [len(jobs)]  # counted before the loop sees them: a scheduler never sees 0
        with self._waiting_lock:
            self._waiting += len(jobs)
        feed = SampleFeed(on_sample)
        try:
            results = self._on_loop(self._generate_all(jobs, left, feed))
        finally:
            self._started(left, len(jobs))  # those cancelled before a slot no longer wait
        out: list[list[Completion]] = [[] for _ in requests]
        for job, c in zip(jobs, results, strict=True):
            out[job.request].append(c)
        feed.raise_first()  # a failing callback is a bug of ours: louder than a down server
        # Every request failing on transport or server errors means the server is unusable;
        # requests refused for their content are per-problem rejections, never the run's.
        if all(c.finish_reason == "error" and not c.meta.get("refused") for c in results):
            raise UserError(
                f"engine openai: all {len(results)} requests to {self.base_url} failed after "
                f"{self.max_retries} retries; first error: {results[0].meta['error']}"
            )
        return out

    def _on_loop(self, coro):
        """Run `coro` on this engine's own event loop (a daemon thread, started once), so that
        calls from several threads at once share one limit of `concurrency` requests in
        flight: a streaming run keeps the next shard's requests waiting behind the last one's
        slow replies, and the slots never idle at a shard boundary."""
        with _LOOP_LOCK:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._loop.run_forever, name="openai-engine", daemon=True
                )
                thread.start()
                atexit.register(_stop_loop, self._loop, thread)
                self._limit = asyncio.Semaphore(self.concurrency)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C or a failed run: stop this call's requests
            raise

    def cancel(self) -> None:
        """Stop every request in flight, from any thread (Ctrl-C): each waiting `generate`
        raises `CancelledError` instead of waiting out its replies (minutes for a long R1
        reply), so an interrupted run ends in seconds. Completed shards are already stored."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers=self._headers,
        )

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_wait,
            retry=retry_if_exception_type(Retryable),
        )

    async def _generate_all(
        self, jobs: list[_Job], left: list[int], feed: SampleFeed
    ) -> list[Completion]:
        limit = self._limit
        done = 0
        started = last_report = time.monotonic()

        async with self._session() as session:

            async def one(job: _Job) -> Completion:
                nonlocal done, last_report
                async with limit:
                    self._started(left)
                    c = await self._complete(session, job.req, job.sample)
                feed.send(job.request, job.sample, c)
                done += 1
                now = time.monotonic()
                if now - last_report > 30 or done == len(jobs):
                    last_report = now
                    log.info("openai: %d/%d requests done (%.0f s)", done, len(jobs), now - started)
                return c

            return await asyncio.gather(*(one(j) for j in jobs))

    async def _complete(
        self, session: aiohttp.ClientSession, req: GenRequest, k: int
    ) -> Completion:
        path, body = request_body(req, k, self.model, self.endpoint, self.extra_body)
        url = self.base_url + path
        start = time.monotonic()
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    resp = await _post(session, url, body)
                    completion = parse_reply(resp, self.endpoint, attempts - 1)
        except RetryError as exc:
            # Retryable, and still failing after every retry: this sample is redone next run.
            error = str(exc.last_attempt.exception())
            return Completion(
                "", finish_reason="error", meta={"error": error, "retries": attempts - 1}
            )
        except Refused as exc:
            if exc.status in CONTENT_STATUS:
                log.warning("openai: the server rejected one request: %s", exc)
                return Completion(
                    "",
                    finish_reason="error",
                    meta={"error": str(exc), "refused": exc.status, "retries": attempts - 1},
                )
            if exc.status in (401, 403, 404):
                raise UserError(
                    f"engine openai: {self.base_url} refused model {self.model!r}: {exc} "
                    f"(API key from ${self.api_key_env})"
                ) from None
            raise UserError(f"engine openai: the server refused a request: {exc}") from None
        completion.meta["latency_s"] = round(time.monotonic() - start, 3)
        return completion

    def post_each(self, path: str, bodies: list[dict]) -> list[dict]:
        """POST each JSON body to `base_url + path` with this engine's retries and
        concurrency; the replies' JSON, in order. A request still failing after its retries,
        or refused, raises `UserError` naming the URL (no per-request errors here: a caller
        scoring with a reward model needs every score).

        >>> eng.post_each("/classify", [{"model": "rm", "messages": chat}])  # doctest: +SKIP
        [{'data': [{'probs': [0.93], ...}], ...}]
        """
        url = self.base_url + path

        async def post_all() -> list[dict]:
            async with self._session() as session:

                async def one(body: dict) -> dict:
                    async with self._limit:
                        try:
                            async for attempt in self._retrying():
                                with attempt:
                                    out = await _post(session, url, body)
                        except (RetryError, Refused) as exc:
                            raise UserError(f"{url} failed: {exc}") from None
                    return out

                tasks = [asyncio.ensure_future(one(b)) for b in bodies]
                try:
                    return await asyncio.gather(*tasks)
                except BaseException:
                    for task in tasks:  # one failed: the scores are lost, stop the rest
                        task.cancel()
                    raise

        return self._on_loop(post_all()) if bodies else []


async def _post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    try:
        async with session.post(url, json=body) as r:
            text = await r.text()
            if r.status == 200:
                try:
                    return json.loads(text)
                except ValueError:
                    kind = r.headers.get("content-type", "?").split(";")[0]
                    raise Retryable(f"malformed reply: not JSON ({kind}): {text[:120]!r}") from None
            message = error_message(text)
            if r.status in RETRY_STATUS or r.status >= 500:
                raise Retryable(f"HTTP {r.status} {message}", retry_after(r.headers))
            raise Refused(r.status, message)
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
        raise Retryable(f"{type(exc).__name__}: {exc}".strip(": ")) from exc


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """At exit, end the engine's loop thread: a daemon thread frozen mid-loop keeps what its
    frames hold (the run's DuckDB objects) alive past shutdown, and DuckDB's bindings then
    print dozens of `nanobind: leaked` lines after a run that went well."""
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
