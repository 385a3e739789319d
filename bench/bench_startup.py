"""The fixed cost of a command, as a user meets it: medians of `--reps` (5) runs each.

  help           `reasonfactory --help`, process start to exit
  first request  `reasonfactory run distill.yaml` (2,000 problems, `distill` on the `openai`
                 engine against a local teacher, tests/teacher_server.py in this process):
                 process start to the teacher's first request, then the command is killed.
                 `first`: no Prefect server runs, so this command starts the local one;
                 `second`: the server an earlier command started is reused.
  demo           `reasonfactory demo` into a new warehouse, process start to exit, with the
                 server running (a second command)

Every command is a fresh process of the real CLI, in a throwaway PREFECT_HOME (no user
server is touched; PREFECT_API_URL is unset). `--compare PYTHON` runs the same
measurements with another install's interpreter (e.g. today's main checkout's venv), in
the same invocation, alternating with this one; an install without the shared server
(`reasonfactory server`) starts Prefect's temporary server in every command, so it has
one figure per measurement. Targets (issue #26): first request <= 15 s first / <= 5 s
second, help <= 1 s, demo <= 5 s second. This prints numbers; it is not a test.

    .venv/bin/python bench/bench_startup.py [--reps 5] [--compare ../main/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, isolate_prefect

isolate_prefect()
sys.path.insert(0, str(ROOT))

from tests.teacher_server import TeacherServer  # noqa: E402

CLI = "from reasonfactory.flows.cli import main; main()"


class Install:
    def __init__(self, python: str, tmp: Path):
        self.python = python
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        self.env["PREFECT_HOME"] = str(tmp / "prefect")
        self.shared = self.run("server", "status", check=False).returncode == 0

    def cmd(self, *args: str) -> list[str]:
        return [self.python, "-c", CLI, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 300):
        proc = subprocess.run(
            self.cmd(*args), cwd=self.tmp, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and proc.returncode:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def stop_server(self) -> None:
        if self.shared:
            self.run("server", "stop", check=False)

    def wall(self, *args: str) -> float:
        t0 = time.monotonic()
        self.run(*args)
        return time.monotonic() - t0

    def first_request(self, recipe: Path, teacher: TeacherServer, deadline: float = 300) -> float:
        teacher.state.first_at = None
        db = self.tmp / f"d{time.monotonic_ns()}.duckdb"
        t0 = time.monotonic()
        proc = subprocess.Popen(
            self.cmd("run", str(recipe), "-w", str(db)), cwd=self.tmp, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            while teacher.state.first_at is None:
                if proc.poll() is not None:
                    raise SystemExit(f"run exited before a request:\n{proc.stderr.read()}")
                if time.monotonic() - t0 > deadline:
                    raise SystemExit(f"no request within {deadline:.0f} s")
                time.sleep(0.01)
            return teacher.state.first_at - t0
        finally:
            # The command's process group only: the local server runs in its own session.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _recipe(tmp: Path, base_url: str, n: int) -> Path:
    problems = tmp / "problems.jsonl"
    problems.write_text(
        "".join(
            json.dumps({"question": f"What is {i} + {i % 97}?", "answer": str(i + i % 97)}) + "\n"
            for i in range(n)
        )
    )
    recipe = {
        "name": "bench-startup",
        "problems": {"source": str(problems)},
        "engine": {"kind": "openai", "model": "teacher", "base_url": base_url, "concurrency": 64},
        "generate": {"method": "distill", "samples": 1, "max_tokens": 256},
        "filters": ["format", "answer"],
    }
    path = tmp / "distill.yaml"
    path.write_text(json.dumps(recipe))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--compare", metavar="PYTHON", help="another install's python to measure")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rf-bench-startup-"))
    installs = {}
    try:
        for name, python in (("this", sys.executable), ("compare", args.compare)):
            if python:
                (root / name).mkdir()
                installs[name] = Install(python, root / name)
        print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
        for name, inst in installs.items():
            shared = "shared local server" if inst.shared else "Prefect's temporary server"
            print(f"{name}: {inst.python} ({shared} per command)")
        figures: dict[str, dict[str, list[float]]] = {n: {} for n in installs}
        with TeacherServer(delay_s=0.2, delay_sigma=1.2) as teacher:
            recipes = {
                n: _recipe(i.tmp, teacher.base_url, args.requests) for n, i in installs.items()
            }
            for rep in range(args.reps):
                for name, inst in installs.items():
                    got = figures[name]
                    got.setdefault("help", []).append(inst.wall("--help"))
                    if inst.shared:
                        inst.stop_server()
                        got.setdefault("first request, first command", []).append(
                            inst.first_request(recipes[name], teacher)
                        )
                    key = "first request, second command" if inst.shared else "first request"
                    got.setdefault(key, []).append(inst.first_request(recipes[name], teacher))
                    db = inst.tmp / f"demo{rep}.duckdb"
                    key = "demo, second command" if inst.shared else "demo"
                    got.setdefault(key, []).append(inst.wall("demo", "-w", str(db)))
                print(f"rep {rep + 1}/{args.reps} done, load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"medians of {args.reps} (seconds), load average at end {os.getloadavg()[0]:.1f}:")
        for name, got in figures.items():
            for what, values in got.items():
                spread = ", ".join(f"{v:.2f}" for v in values)
                print(f"  {name:8s} {what:32s} {statistics.median(values):6.2f}   ({spread})")
    finally:
        for inst in installs.values():
            inst.stop_server()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
