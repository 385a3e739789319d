"""Helpers the benchmarks share: a throwaway Prefect home, and the teacher server in its own
process (tests/teacher_server.py) on a free loopback port."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def isolate_prefect() -> None:
    """Point Prefect at a throwaway home, no telemetry (call before importing Prefect)."""
    home = tempfile.mkdtemp(prefix="rf-bench-prefect-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = home
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A busy machine starts the ephemeral API slowly (the default wait is 20 s).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _serve(port: int, delay: float, sigma: float) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.teacher_server import serve_forever

    serve_forever(port, delay, sigma)


@contextmanager
def teacher(delay: float, sigma: float = 0.0) -> Iterator[str]:
    """The teacher server in its own process; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, delay, sigma))
    server.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/completions", timeout=1)
            except urllib.error.HTTPError:
                break  # up (405 for GET)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the teacher server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.join(10)
