"""The OpenAI API's shapes, as pure functions: what to send for one sample, what a reply means.

- `request_body`: the path and JSON body of one sample's request (`n=1`, its own seed),
  for the chat or the completions endpoint, with vLLM/SGLang's extensions where asked
  (continue a partial assistant turn, keep the stop string).
- `parse_reply`: a 200 reply as a `Completion` (text, `reasoning_content` / `reasoning` when
  the server splits thinking off, finish reason, summed logprobs, token usage in `meta`); a
  reply not shaped like the API's (no `choices`, a choice without a message, text that is
  not text) raises `Retryable`, as a 5xx does.
- `error_message`, `retry_after`, `backoff`: what a failed reply says, how long it asks us
  to wait, and how long we wait when it does not say.

Not here: sending anything (`generators/engines/openai.py` is the one module that speaks
HTTP), choosing prompts, parsing answers.
"""

from __future__ import annotations

import json
import random

from reasonfactory.generators.engines.base import Completion, GenRequest

RETRY_STATUS = {408, 409, 429}  # and every 5xx
CONTENT_STATUS = {400, 413, 422}  # this request's content: its own error, not the run's
MAX_RETRY_AFTER = 120.0


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


def request_body(
    req: GenRequest, k: int, model: str, endpoint: str, extra_body: dict | None = None
) -> tuple[str, dict]:
    """The path (under the base URL) and JSON body that ask for sample `k` of `req`.

    >>> path, body = request_body(GenRequest(prompt="1 + 1 =", seed=7, n=4), 2, "m", "chat")
    >>> path, body["messages"], body["seed"], body["n"]
    ('/chat/completions', [{'role': 'user', 'content': '1 + 1 ='}], 9, 1)
    >>> request_body(GenRequest(prompt="1 + 1 =", prefix=" 2"), 0, "m", "completions")[1]["prompt"]
    '1 + 1 = 2'
    """
    body: dict = {
        "model": model,
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
    if endpoint == "chat":
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
        body["prompt"] = completion_prompt(req)
        if req.logprobs:
            body["logprobs"] = 1
        path = "/completions"
    body.update(extra_body or {})
    return path, body


def completion_prompt(req: GenRequest) -> str:
    """A raw prompt for the completions endpoint: the request's, else the chat's contents
    joined by blank lines (no chat template: the server does not apply one there)."""
    if req.prompt is not None:
        return req.prompt + req.prefix
    return "\n\n".join(m.get("content", "") for m in req.messages) + "\n\n" + req.prefix


def retry_after(headers) -> float | None:
    """Retry-After in seconds (the date form is rare from API servers; it is ignored).

    >>> retry_after({"retry-after-ms": "1500"}), retry_after({"retry-after": "2"})
    (1.5, 2.0)
    """
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


def error_message(text: str) -> str:
    """The message of an error reply's body (OpenAI's `{"error": {"message": ...}}` or not).

    >>> error_message('{"error": {"message": "rate limited"}}'), error_message("<html>")
    ('rate limited', '<html>')
    """
    try:
        err = json.loads(text).get("error", text)
        return str(err.get("message", err) if isinstance(err, dict) else err)[:300]
    except (ValueError, AttributeError):
        return text[:300]


def parse_reply(resp, endpoint: str, retries: int = 0) -> Completion:
    """A completion from a 200 reply; a reply not shaped like the API's is `Retryable`.

    >>> reply = {"choices": [{"message": {"content": "4", "reasoning_content": "2 + 2"},
    ...          "finish_reason": "stop"}], "usage": {"completion_tokens": 3}}
    >>> c = parse_reply(reply, "chat")
    >>> c.text, c.reasoning, c.n_tokens
    ('4', '2 + 2', 3)
    >>> parse_reply({"choices": []}, "chat")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    reasonfactory.generators.engines.openai_api.Retryable: malformed reply (IndexError: ...
    """
    try:
        return _read_reply(resp, endpoint, retries)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        shown = json.dumps(resp)[:120] if not isinstance(resp, str) else resp[:120]
        raise Retryable(
            f"malformed reply ({type(exc).__name__}: {str(exc)[:60]}): {shown}"
        ) from None


def _read_reply(resp: dict, endpoint: str, retries: int) -> Completion:
    choice = resp["choices"][0]
    if not isinstance(choice, dict):
        raise TypeError("choices[0] is not an object")
    usage = resp.get("usage") or {}
    meta = {
        "retries": retries,
        "latency_s": 0.0,  # the caller times the request
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
