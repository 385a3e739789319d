"""An OpenAI-compatible chat server that replays scripted answers: a stand-in model for
problems the sim cannot solve (reasoning-gym families).

A real HTTP server (Starlette on uvicorn, 127.0.0.1, a free port) in a background thread, as
tests/teacher_server.py. `answer(question, seed)` gives the text after `</think>` for the
problem in the prompt (the text after the solve prompt's last `Problem:`) and the request's
seed (sample k of a request seeded s has seed s + k); the reply is
`<think>\\n...\\n</think>\\n\\n` + that text. `fault(question)`, when given, may answer
instead: an int is an HTTP status to reply with (500), a float seconds to wait first (a slow
reply). This is a test fixture, not a model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from teacher_server import ThreadedServer


def make_app(answer: Callable[[str, int], str], log: list, fault=None) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        question = prompt.rsplit("Problem: ", 1)[-1]
        seed = int(body.get("seed") or 0)
        log.append((question, seed))
        what = fault(question) if fault is not None else None
        if isinstance(what, int):
            return JSONResponse({"error": {"message": "scripted fault"}}, status_code=what)
        if isinstance(what, float):
            await asyncio.sleep(what)
        text = f"<think>\nLet me work this out.\n</think>\n\n{answer(question, seed)}"
        words = len(text.split())
        return JSONResponse(
            {
                "id": f"s-{len(log)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": words,
                    "total_tokens": len(prompt.split()) + words,
                },
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


class ScriptedServer(ThreadedServer):
    """`with ScriptedServer(answer) as srv: srv.base_url` -> http://127.0.0.1:PORT/v1."""

    def __init__(self, answer: Callable[[str, int], str], fault=None):
        self.log: list[tuple[str, int]] = []
        super().__init__(make_app(answer, self.log, fault))
