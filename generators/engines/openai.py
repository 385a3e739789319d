"""The `openai` engine: any OpenAI-compatible server (vllm serve, SGLang, hosted teachers).

The only module that speaks HTTP. A batch becomes one HTTP request per sample (hosted
reasoning models ignore `n`, and separate requests spread over the concurrency limit), sent
asynchronously with at most `concurrency` in flight. Retries are the official `openai`
client's: exponential backoff with jitter on 408/409/429/5xx, timeouts and dropped
connections, honouring `Retry-After`; `timeout` bounds each attempt.

A request that still fails after its retries comes back as `finish_reason="error"` with the
reason in `meta["error"]` (the rest of the batch is kept; the flow asks for it again next
run). A configuration error (401/403/404, a bad request) stops the run with a clear message.

Thinking: read from `reasoning_content` / `reasoning` when the server splits it off; else it
stays inline (`<think>...</think>`) in the text and `generators.prompts.parse_completion`
splits it. Token usage (tokens in/out, reasoning tokens), retries and latency go in
`Completion.meta`. The API key is read from the environment variable the recipe names, when
the engine is built, and kept only in the client: never in a config, a meta or the warehouse.

Not here: choosing prompts, parsing answers, storing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import openai

from generators.engines.base import Completion, GenRequest
from warehouse.errors import UserError

log = logging.getLogger("reasonfactory.engines.openai")

# A server that needs no key (vllm serve, SGLang) still gets a header; the client insists.
NO_KEY = "EMPTY"


@dataclass(frozen=True)
class _Job:
    request: int
    sample: int
    req: GenRequest


class OpenAIEngine:
    """Async, bounded-concurrency client of an OpenAI-compatible server.

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
        self.base_url = base_url
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
        self._key = key or NO_KEY

    def generate(self, requests: list[GenRequest]) -> list[list[Completion]]:
        jobs = [_Job(i, k, r) for i, r in enumerate(requests) for k in range(r.n)]
        if not jobs:
            return [[] for _ in requests]
        results = _run(self._generate_all(jobs))
        out: list[list[Completion]] = [[] for _ in requests]
        for job, c in zip(jobs, results, strict=True):
            out[job.request].append(c)
        if all(c.finish_reason == "error" for c in results):
            raise UserError(
                f"engine openai: all {len(results)} requests to "
                f"{self.base_url or 'api.openai.com'} failed after {self.max_retries} retries; "
                f"first error: {results[0].meta['error']}"
            )
        return out

    async def _generate_all(self, jobs: list[_Job]) -> list[Completion]:
        limit = asyncio.Semaphore(self.concurrency)
        client = openai.AsyncOpenAI(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        done = 0
        started = last_report = time.monotonic()

        async def one(job: _Job) -> Completion:
            nonlocal done, last_report
            async with limit:
                c = await self._complete(client, job.req, job.sample)
            done += 1
            now = time.monotonic()
            if now - last_report > 30 or done == len(jobs):
                last_report = now
                log.info("openai: %d/%d requests done (%.0f s)", done, len(jobs), now - started)
            return c

        try:
            return await asyncio.gather(*(one(j) for j in jobs))
        finally:
            await client.close()

    async def _complete(self, client: openai.AsyncOpenAI, req: GenRequest, k: int) -> Completion:
        args: dict = {
            "model": self.model,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "n": 1,
        }
        if req.stop:
            args["stop"] = list(req.stop)
        if req.seed is not None:
            # vLLM's rule for sample k of a seeded request (see GenRequest.first_sample).
            args["seed"] = req.seed + req.first_sample + k
        extra = dict(self.extra_body)
        if req.stop and req.include_stop:
            extra["include_stop_str_in_output"] = True  # vLLM / SGLang extension
        start = time.monotonic()
        try:
            if self.endpoint == "chat":
                messages = [dict(m) for m in req.messages] or [
                    {"role": "user", "content": req.prompt or ""}
                ]
                if req.prefix:
                    # Continue a partial assistant turn (vLLM and SGLang understand this).
                    messages.append({"role": "assistant", "content": req.prefix})
                    extra.update(continue_final_message=True, add_generation_prompt=False)
                if req.logprobs:
                    args["logprobs"] = True
                raw = await client.chat.completions.with_raw_response.create(
                    messages=messages, extra_body=extra or None, **args
                )
            else:
                if req.logprobs:
                    args["logprobs"] = 1
                raw = await client.completions.with_raw_response.create(
                    prompt=_completion_prompt(req), extra_body=extra or None, **args
                )
            resp = raw.parse()
        except (
            openai.AuthenticationError,
            openai.PermissionDeniedError,
            openai.NotFoundError,
        ) as exc:
            raise UserError(
                f"engine openai: {self.base_url or 'api.openai.com'} refused model "
                f"{self.model!r}: {_status(exc)} {_message(exc)} (API key from ${self.api_key_env})"
            ) from None
        except openai.BadRequestError as exc:
            raise UserError(
                f"engine openai: the server rejected a request: {_message(exc)}"
            ) from None
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            # Retryable, and still failing after every retry: this sample is redone next run.
            return Completion(
                "",
                finish_reason="error",
                meta={
                    "error": f"{_status(exc)} {_message(exc)}".strip(),
                    "retries": self.max_retries,
                },
            )
        latency = time.monotonic() - start
        return _parse(resp, self.endpoint, raw.retries_taken, latency)


def _parse(resp, endpoint: str, retries: int, latency: float) -> Completion:
    choice = resp.choices[0]
    usage = resp.usage
    meta = {
        "retries": retries,
        "latency_s": round(latency, 3),
        "tokens_in": getattr(usage, "prompt_tokens", None),
        "tokens_out": getattr(usage, "completion_tokens", None),
    }
    details = getattr(usage, "completion_tokens_details", None)
    if details is not None and getattr(details, "reasoning_tokens", None) is not None:
        meta["reasoning_tokens"] = details.reasoning_tokens
    if choice.finish_reason not in (None, "stop", "length"):
        meta["server_finish_reason"] = choice.finish_reason
    finish = "length" if choice.finish_reason == "length" else "stop"
    if endpoint == "chat":
        msg = choice.message
        text = msg.content or ""
        extra = msg.model_extra or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        logprob = None
        if choice.logprobs is not None and choice.logprobs.content is not None:
            logprob = sum(t.logprob for t in choice.logprobs.content)
    else:
        text = choice.text or ""
        reasoning = None
        lp = choice.logprobs
        logprob = sum(x for x in lp.token_logprobs if x is not None) if lp is not None else None
    stop_reason = (choice.model_extra or {}).get("stop_reason")
    return Completion(
        text=text,
        finish_reason=finish,
        stop_reason=stop_reason if isinstance(stop_reason, str) else None,
        n_tokens=meta["tokens_out"] or 0,
        cumulative_logprob=logprob,
        reasoning=reasoning or None,
        meta=meta,
    )


def _completion_prompt(req: GenRequest) -> str:
    """A raw prompt for the completions endpoint: the request's, else the chat's contents
    joined by blank lines (no chat template: the server does not apply one there)."""
    head = (
        req.prompt
        if req.prompt is not None
        else "\n\n".join(m.get("content", "") for m in req.messages) + "\n\n"
    )
    return head + req.prefix


def _status(exc: Exception) -> str:
    code = getattr(exc, "status_code", None)
    return f"HTTP {code}" if code else type(exc).__name__


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", exc))[:300]


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
        self.model = model
        # vLLM serves /classify beside /v1, not under it.
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self._key = os.environ.get(api_key_env) or NO_KEY

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
        limit = asyncio.Semaphore(self.concurrency)
        client = openai.AsyncOpenAI(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

        async def one(question: str, text: str) -> float:
            body = {
                "model": self.model,
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": text},
                ],
            }
            async with limit:
                try:
                    out = await client.post("/classify", body=body, cast_to=object)
                except openai.APIError as exc:
                    raise UserError(
                        f"verifier endpoint {self.base_url}/classify failed: {_message(exc)}"
                    ) from None
            return float(out["data"][0]["probs"][0])

        try:
            return await asyncio.gather(*(one(q, t) for q, t in pairs))
        finally:
            await client.close()
