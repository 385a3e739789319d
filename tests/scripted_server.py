"""An OpenAI-compatible chat server that replays scripted answers: a stand-in model for
problems the sim cannot solve (reasoning-gym families).

A real HTTP server (Starlette on uvicorn, 127.0.0.1, a free port) in a background thread, as
tests/teacher_server.py. `answer(question, seed)` gives the text after `</think>` for the
problem in the prompt (the text after the solve prompt's last `Problem:`) and the request's
seed (sample k of a request seeded s has seed s + k); the reply is
`<think>\\n...\\n</think>\\n\\n` + that text. This is a test fixture, not a model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(answer: Callable[[str, int], str], log: list) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        question = prompt.rsplit("Problem: ", 1)[-1]
        seed = int(body.get("seed") or 0)
        log.append((question, seed))
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


class ScriptedServer:
    """`with ScriptedServer(answer) as srv: srv.base_url` -> http://127.0.0.1:PORT/v1."""

    def __init__(self, answer: Callable[[str, int], str]):
        self.log: list[tuple[str, int]] = []
        config = uvicorn.Config(
            make_app(answer, self.log),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the scripted server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
