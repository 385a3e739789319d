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

Not here: choosing prompts, parsing answers, storing.

Long on purpose: this is the one module that speaks HTTP (house rule 4), so the engine, its
retry and refusal rules, the check of each reply's shape and the reward-endpoint client that
reuses them stay together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
from reasonfactory.generators.engines.base import Completion, GenRequest
from reasonfactory.warehouse.errors import UserError
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt

log = logging.getLogger("reasonfactory.engines.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 429}  # and every 5xx
CONTENT_STATUS = {400, 413, 422}  # this request's content: its own error, not the run's
MAX_RETRY_AFTER = 120.0
_LOOP_LOCK = threading.Lock()


class Retryable(Exception):
    """A failure worth another attempt (rate limit, overload, timeout, dropped connection)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """A failure no retry fixes (bad key, unknown model, malformed request)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status} {message}")
        self.status = status


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before attempt `attempt + 1`: what Retry-After asks, else 0.5 s doubling up to
    8 s, less a random 0-25 % (jitter, so many clients do not retry in step).

    >>> backoff(1, 3.0), 0.375 <= backoff(1, None) <= 0.5, backoff(10, None) <= 8
    (3.0, True, True)
    """
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER:
        return retry_after
    return min(0.5 * 2 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())


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
        while it is at least `concurrency`, a slot that frees is refilled at once. The
        streaming flow asks for the next shard when it falls below (flows/generate.py)."""
        return self._waiting

    def _started(self, left: list[int], n: int = 1) -> None:
        """`n` requests of one call (`left` of them still waiting) got a slot, or never will."""
        with self._waiting_lock:
            n = min(n, left[0])
            left[0] -= n
            self._waiting -= n

    def generate(self, requests: list[GenRequest]) -> list[list[Completion]]:
        jobs = [_Job(i, k, r) for i, r in enumerate(requests) for k in range(r.n)]
        if not jobs:
            return [[] for _ in requests]
        left = [len(jobs)]  # counted before the loop sees them: a scheduler never sees 0
        with self._waiting_lock:
            self._waiting += len(jobs)
        try:
            results = self._on_loop(self._generate_all(jobs, left))
        finally:
            self._started(left, len(jobs))  # those cancelled before a slot no longer wait
        out: list[list[Completion]] = [[] for _ in requests]
        for job, c in zip(jobs, results, strict=True):
            out[job.request].append(c)
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
                threading.Thread(
                    target=self._loop.run_forever, name="openai-engine", daemon=True
                ).start()
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

    async def _generate_all(self, jobs: list[_Job], left: list[int]) -> list[Completion]:
        limit = self._limit
        done = 0
        started = last_report = time.monotonic()
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)

        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self._headers
        ) as session:

            async def one(job: _Job) -> Completion:
                nonlocal done, last_report
                async with limit:
                    self._started(left)
                    c = await self._complete(session, job.req, job.sample)
                done += 1
                now = time.monotonic()
                if now - last_report > 30 or done == len(jobs):
                    last_report = now
                    log.info("openai: %d/%d requests done (%.0f s)", done, len(jobs), now - started)
                return c

            return await asyncio.gather(*(one(j) for j in jobs))

    def _body(self, req: GenRequest, k: int) -> tuple[str, dict]:
        body: dict = {
            "model": self.model,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "n": 1,
        }
        if req.stop:
            body["stop"] = list(req.stop)
            if req.include_stop:
                body["include_stop_str_in_output"] = True  # vLLM / SGLang extension
        if req.seed is not None:
            # vLLM's rule for sample k of a seeded request (see GenRequest.first_sample).
            body["seed"] = req.seed + req.first_sample + k
        if self.endpoint == "chat":
            messages = [dict(m) for m in req.messages] or [
                {"role": "user", "content": req.prompt or ""}
            ]
            if req.prefix:
                # Continue a partial assistant turn (vLLM and SGLang understand this).
                messages.append({"role": "assistant", "content": req.prefix})
                body.update(continue_final_message=True, add_generation_prompt=False)
            body["messages"] = messages
            if req.logprobs:
                body["logprobs"] = True
            path = "/chat/completions"
        else:
            body["prompt"] = _completion_prompt(req)
            if req.logprobs:
                body["logprobs"] = 1
            path = "/completions"
        body.update(self.extra_body)
        return path, body

    async def _complete(
        self, session: aiohttp.ClientSession, req: GenRequest, k: int
    ) -> Completion:
        path, body = self._body(req, k)
        url = self.base_url + path
        start = time.monotonic()
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=_wait,
                retry=retry_if_exception_type(Retryable),
            ):
                with attempt:
                    attempts += 1
                    resp = await _post(session, url, body)
                    completion = _parse(resp, self.endpoint, attempts - 1, 0.0)
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
            message = _error_message(text)
            if r.status in RETRY_STATUS or r.status >= 500:
                raise Retryable(f"HTTP {r.status} {message}", _retry_after(r.headers))
            raise Refused(r.status, message)
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
        raise Retryable(f"{type(exc).__name__}: {exc}".strip(": ")) from exc


def _retry_after(headers) -> float | None:
    """Retry-After in seconds (the date form is rare from API servers; it is ignored)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    try:
        return float(headers.get("retry-after", ""))
    except ValueError:
        return None


def _error_message(text: str) -> str:
    try:
        err = json.loads(text).get("error", text)
        return str(err.get("message", err) if isinstance(err, dict) else err)[:300]
    except (ValueError, AttributeError):
        return text[:300]


def _parse(resp, endpoint: str, retries: int, latency: float) -> Completion:
    """A completion from a 200 reply; a reply not shaped like the API's is `Retryable`."""
    try:
        return _read_reply(resp, endpoint, retries, latency)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        shown = json.dumps(resp)[:120] if not isinstance(resp, str) else resp[:120]
        raise Retryable(
            f"malformed reply ({type(exc).__name__}: {str(exc)[:60]}): {shown}"
        ) from None


def _read_reply(resp: dict, endpoint: str, retries: int, latency: float) -> Completion:
    choice = resp["choices"][0]
    if not isinstance(choice, dict):
        raise TypeError("choices[0] is not an object")
    usage = resp.get("usage") or {}
    meta = {
        "retries": retries,
        "latency_s": round(latency, 3),
        "tokens_in": usage.get("prompt_tokens"),
        "tokens_out": usage.get("completion_tokens"),
    }
    reasoning_tokens = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning_tokens is not None:
        meta["reasoning_tokens"] = reasoning_tokens
    finish_reason = choice.get("finish_reason")
    if finish_reason not in (None, "stop", "length"):
        meta["server_finish_reason"] = finish_reason
    logprobs = choice.get("logprobs") or {}
    if endpoint == "chat":
        msg = choice["message"]
        text = msg.get("content") or ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        tokens = logprobs.get("content")
        logprob = sum(t["logprob"] for t in tokens) if tokens is not None else None
    else:
        text = choice.get("text") or ""
        reasoning = None
        tokens = logprobs.get("token_logprobs")
        logprob = sum(x for x in tokens if x is not None) if tokens is not None else None
    if not isinstance(text, str) or not isinstance(reasoning, str | None):
        raise TypeError("the reply's text is not a string")
    if not isinstance(meta["tokens_out"], int | None):
        raise TypeError("usage.completion_tokens is not an integer")
    stop_reason = choice.get("stop_reason")
    return Completion(
        text=text,
        finish_reason="length" if finish_reason == "length" else "stop",
        stop_reason=stop_reason if isinstance(stop_reason, str) else None,
        n_tokens=meta["tokens_out"] or 0,
        cumulative_logprob=logprob,
        reasoning=reasoning or None,
        meta=meta,
    )


def _completion_prompt(req: GenRequest) -> str:
    """A raw prompt for the completions endpoint: the request's, else the chat's contents
    joined by blank lines (no chat template: the server does not apply one there)."""
    if req.prompt is not None:
        return req.prompt + req.prefix
    return "\n\n".join(m.get("content", "") for m in req.messages) + "\n\n" + req.prefix


def _run(coro):
    """Run a coroutine to completion, also from a thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class EndpointScorer:
    """A reward model behind an OpenAI-compatible server's `/classify` endpoint (vllm serve
    with a sequence-classification reward model): one chat per (question, completion) pair,
    the first class's output is the reward. Same retries and concurrency as the engine."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 6,
    ):
        # vLLM serves /classify beside /v1, not under it.
        self.engine = OpenAIEngine(
            model,
            base_url=base_url.rstrip("/").removesuffix("/v1"),
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
        )

    @classmethod
    def from_config(cls, config) -> EndpointScorer:
        return cls(
            config.model,
            config.base_url,
            api_key_env=config.api_key_env,
            concurrency=config.concurrency,
            timeout=config.timeout,
            max_retries=config.max_retries,
        )

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        return _run(self._score_all(pairs))

    async def _score_all(self, pairs: list[tuple[str, str]]) -> list[float]:
        eng = self.engine
        limit = asyncio.Semaphore(eng.concurrency)
        url = eng.base_url + "/classify"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=eng.concurrency),
            timeout=aiohttp.ClientTimeout(total=eng.timeout),
            headers=eng._headers,
        ) as session:

            async def one(question: str, text: str) -> float:
                body = {
                    "model": eng.model,
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": text},
                    ],
                }
                async with limit:
                    try:
                        async for attempt in AsyncRetrying(
                            stop=stop_after_attempt(eng.max_retries + 1),
                            wait=_wait,
                            retry=retry_if_exception_type(Retryable),
                        ):
                            with attempt:
                                out = await _post(session, url, body)
                    except (RetryError, Refused) as exc:
                        raise UserError(f"verifier endpoint {url} failed: {exc}") from None
                return float(out["data"][0]["probs"][0])

            return await asyncio.gather(*(one(q, t) for q, t in pairs))
