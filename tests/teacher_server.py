"""A small OpenAI-compatible server that answers like an R1 teacher, with injected faults.

A real HTTP server (Starlette on uvicorn, bound to 127.0.0.1) for the `openai` engine's tests
and benchmark. It answers `POST /v1/chat/completions` and `/v1/completions` for questions like
"What is 17 + 25?": the thinking, then `The answer is \\boxed{42}.`, either inline
(`<think>...</think>`) or split off into `reasoning_content` (`split=True`). One word is one
token: `max_tokens` cuts the reply (`finish_reason: length`), usage counts words.
`POST /classify` scores chats like a reward model: 1.0 for a right boxed answer, else 0.0.

Faults, by a marker in the question, counted per question across attempts:
- `[429]`: the first attempt gets 429 with `Retry-After: 1`.
- `[500]`: the first two attempts get 500.
- `[slow]`: the first attempt sleeps `slow_s` (longer than the client's timeout).
- `[long]`: the thinking is 400 words long (truncated under a small max_tokens).
- `[down]`: 500 every time while `server.down` is true.
- `[wrong]`: the answer is off by one.
- `[odd]`: the answer is off by one for requests with an odd `seed` (samples differ).
- `[html]`: every attempt gets a 200 HTML page (a proxy's error page); `[flaky]` only the first.
- `[empty]`: every attempt gets a 200 JSON reply with empty `choices`.
- `[400]`: every attempt gets vLLM's 400 for a prompt longer than max_model_len.
`delay_s` delays every reply (the benchmark's fixed 50 ms); with `delay_sigma` the delay is
lognormal, `delay_s` its median, drawn from a seed of the `a op b` asked (the same question
waits the same time in every run, whatever the prompt around it: heavy-tailed replies for
bench/bench_streaming.py).

This is a test fixture, not a model: it reads the two numbers out of the question.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

_QUESTION = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass
class TeacherState:
    split: bool = False
    delay_s: float = 0.0
    delay_sigma: float = 0.0
    slow_s: float = 3.0
    down: bool = True
    logprobs: bool = True  # False: a server that never returns log-probabilities
    attempts: Counter = field(default_factory=Counter)
    log: list[dict] = field(default_factory=list)
    first_at: float | None = None  # time.monotonic() of the first request (bench_startup)
    in_flight: int = 0  # requests being answered now, and the most at once
    max_in_flight: int = 0


def solve(question: str) -> tuple[str, str]:
    """The teacher's (thinking, answer) for a question with `a op b` in it."""
    m = _QUESTION.search(question)
    if m is None:
        return "I cannot find the numbers.", "I do not know."
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    value = _OPS[op](a, b) + (1 if "[wrong]" in question else 0)
    steps = [f"We need {a} {op} {b}.", f"{a} {op} {b} = {value}."]
    if "[long]" in question:
        steps.insert(1, " ".join(["Let me double-check this carefully."] * 80))
    return "\n\n".join(steps), f"The answer is \\boxed{{{value}}}."


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def make_app(state: TeacherState) -> Starlette:
    async def fault(question: str) -> Response | None:
        state.attempts[question] += 1
        n = state.attempts[question]
        if "[429]" in question and n == 1:
            return JSONResponse({"error": {"message": "rate limited"}}, 429, {"Retry-After": "1"})
        if "[500]" in question and n <= 2:
            return JSONResponse({"error": {"message": "overloaded"}}, 500)
        if "[down]" in question and state.down:
            return JSONResponse({"error": {"message": "down"}}, 500)
        if "[html]" in question or ("[flaky]" in question and n == 1):
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", 200)
        if "[empty]" in question:
            return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
        if "[400]" in question:
            message = (
                "This model's maximum context length is 512 tokens. However, you requested "
                "2048 tokens (1536 in the messages, 512 in the completion)."
            )
            return JSONResponse({"error": {"message": message, "code": 400}}, 400)
        if "[slow]" in question and n == 1:
            await asyncio.sleep(state.slow_s)
        return None

    def reply(question: str, body: dict, chat: bool) -> tuple[dict, str]:
        if "[odd]" in question and int(body.get("seed") or 0) % 2:
            question += " [wrong]"  # samples of one request differ: odd seeds slip
        thinking, answer = solve(question)
        max_tokens = int(body.get("max_tokens") or 10**6)
        think_words = _words(thinking)
        answer_words = _words(answer)
        finish = "stop"
        if len(think_words) + 2 + len(answer_words) > max_tokens:  # the tags count as tokens
            finish = "length"
            think_words = think_words[: max(max_tokens - 1, 0)]
            answer_words = []
        thinking_out = "".join(think_words).rstrip()
        answer_out = "".join(answer_words)
        n_out = len(think_words) + len(answer_words) + (2 if finish == "stop" else 1)
        message: dict = {"role": "assistant"}
        if chat and state.split:
            message["content"] = answer_out
            message["reasoning_content"] = thinking_out
        else:
            closing = "\n</think>\n\n" + answer_out if finish == "stop" else ""
            message["content"] = "<think>\n" + thinking_out + closing
        choice: dict = {"index": 0, "finish_reason": finish}
        if chat:
            choice["message"] = message
            if body.get("logprobs") and state.logprobs:
                choice["logprobs"] = {
                    "content": [
                        {"token": w, "logprob": -0.1, "bytes": None, "top_logprobs": []}
                        for w in range(n_out)
                    ]
                }
        else:
            choice["text"] = message["content"]
            choice["logprobs"] = None
        usage = {
            "prompt_tokens": len(_words(question)),
            "completion_tokens": n_out,
            "total_tokens": len(_words(question)) + n_out,
            "completion_tokens_details": {"reasoning_tokens": len(think_words)},
        }
        return {
            "id": f"cmpl-{sum(state.attempts.values())}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "teacher"),
            "choices": [choice],
            "usage": usage,
        }, finish

    async def chat(request: Request) -> Response:
        body = await request.json()
        question = next(
            (m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), ""
        )
        # The solve prompt (self_output, eval) shows an example `12 * 3 = 36` before its
        # `Problem: ...`: read the problem, not the example.
        question = question.rsplit("Problem:", 1)[-1]
        return await answer(question, body, request.headers, chat=True)

    async def completions(request: Request) -> Response:
        body = await request.json()
        return await answer(body["prompt"], body, request.headers, chat=False)

    async def answer(question: str, body: dict, headers, chat: bool) -> Response:
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await answer_one(question, body, headers, chat)
        finally:
            state.in_flight -= 1

    async def answer_one(question: str, body: dict, headers, chat: bool) -> Response:
        if state.first_at is None:
            state.first_at = time.monotonic()
        if state.delay_s:
            # Seeded by the `a op b` asked, so any prompt around it waits the same time.
            m = _QUESTION.search(question)
            seed = m.group(0) if m else question
            z = random.Random(seed).gauss(0, 1) if state.delay_sigma else 0.0
            await asyncio.sleep(state.delay_s * math.exp(state.delay_sigma * z))
        failed = await fault(question)
        entry = {
            "question": question,
            "status": failed.status_code if failed else 200,
            "body": body,
            "authorization": headers.get("authorization"),
        }
        state.log.append(entry)
        if failed is not None:
            return failed
        payload, entry["finish_reason"] = reply(question, body, chat)
        return JSONResponse(payload)

    async def classify(request: Request) -> JSONResponse:
        body = await request.json()
        messages = body["messages"]
        question = next(m["content"] for m in messages if m["role"] == "user")
        text = next(m["content"] for m in reversed(messages) if m["role"] == "assistant")
        _, right = solve(question.replace("[wrong]", ""))
        score = 1.0 if right.split("boxed")[-1] in text else 0.0
        return JSONResponse(
            {
                "id": "classify-0",
                "object": "list",
                "created": int(time.time()),
                "model": body.get("model"),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
                "data": [{"index": 0, "label": None, "probs": [score], "num_classes": 1}],
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/classify", classify, methods=["POST"]),
        ]
    )


class ThreadedServer:
    """Serve a Starlette app on 127.0.0.1 (a free port) in a background thread: `with
    ThreadedServer(app) as srv: srv.base_url` -> http://127.0.0.1:PORT/v1."""

    def __init__(self, app):
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the {type(self).__name__} did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class TeacherServer(ThreadedServer):
    """Serve the teacher on 127.0.0.1 (a free port) in a background thread.

    >>> with TeacherServer() as srv:  # doctest: +SKIP
    ...     srv.base_url
    'http://127.0.0.1:PORT/v1'
    """

    def __init__(self, **state):
        self.state = TeacherState(**state)
        super().__init__(make_app(self.state))


def serve_forever(port: int, delay_s: float = 0.0, delay_sigma: float = 0.0) -> None:
    """Run the teacher in this process on a fixed port (the benchmark's server process)."""
    uvicorn.run(
        make_app(TeacherState(delay_s=delay_s, delay_sigma=delay_sigma)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
