"""Code verification throughput: tests per second through the sandbox, and its overhead per
test against a bare `subprocess.run([python, "-c", program])` measured in the same run.

Input: `builtin:code` (the seeded code family, `--problems` problems from `--seed`, ten stdio
tests each), each problem's right program (`code_program(question, "right")`, a few lines
that run in well under 10 ms per test). Both sides use the same `--workers` (default 2):

- sandbox: `verify_many` with `early_stop` off, one sandbox per program that runs all its
  tests (bubblewrap, seccomp, the process cap), outputs compared outside; every verdict
  must be `passed` or the bench stops;
- bare: per test a fresh `subprocess.run([sys.executable, "-c", program], input=...)`, no
  sandbox, output compared by stripped text (what one would write without this project).

Overhead per test = (sandbox seconds - bare seconds) / tests, both at the same concurrency;
it is negative when one sandbox per program beats one interpreter per test. The last line
puts one sandbox run of a program (start, its ten tests, exit) beside one bare interpreter
run, both in wall time under the same load. The target of
issue #22 is >= 100 tests/s with 2 processes. Run from the repository root (tens of seconds):

    python bench/bench_code.py [--problems 50] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from reasonfactory.generators.problems.code_family import code_program
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many
from reasonfactory.generators.verify.sandbox_layers import weak_layers


def _bare(program: str, test: dict) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", program],
        input=test["input"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return proc.stdout.strip() == test["output"].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if weak_layers():
        sys.exit(f"this machine's sandbox lacks {weak_layers()}: nothing to measure")
    problems = load_problems("builtin:code", limit=args.problems, seed=args.seed)
    items = [
        (read_tests(json.loads(p["meta"])["code"]), code_program(p["question"], "right"))
        for p in problems.iter_rows(named=True)
    ]
    n_tests = sum(len(t.tests) for t, _ in items)
    options = CodeOptions(extract="whole", workers=args.workers, early_stop=False)
    verify_many(items[:2], options)  # warm the page cache (bwrap, python) before timing

    start = time.perf_counter()
    verdicts = verify_many(items, options)
    sandbox_s = time.perf_counter() - start
    bad = [v for v in verdicts if v.verdict != "passed"]
    if bad:
        sys.exit(f"{len(bad)} right program(s) not passed, e.g. {bad[0]}")

    cases = [(program, test) for tests, program in items for test in tests.tests]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        bare_ok = list(pool.map(lambda c: _bare(*c), cases))
    bare_s = time.perf_counter() - start
    if not all(bare_ok):
        sys.exit(f"{bare_ok.count(False)} bare run(s) gave a wrong output")

    runs = sorted(v.seconds for v in verdicts)  # one sandbox run per program, start to end
    print(f"input: builtin:code, {len(items)} problems (seed {args.seed}), {n_tests} tests")
    print(f"workers: {args.workers}; cpus: {os.cpu_count()}; load: {os.getloadavg()[0]:.2f}")
    print(f"sandbox: {verdicts[0].layers and ', '.join(verdicts[0].layers)}")
    print(
        f"sandboxed: {n_tests / sandbox_s:.0f} tests/s ({sandbox_s:.2f} s, "
        f"{1000 * sandbox_s / len(items):.0f} ms per program of ~10 tests)"
    )
    print(f"bare subprocess.run per test: {n_tests / bare_s:.0f} tests/s ({bare_s:.2f} s)")
    print(
        f"overhead per test vs bare: {1000 * (sandbox_s - bare_s) / n_tests:+.1f} ms "
        f"(sandbox {1000 * sandbox_s / n_tests:.1f} ms, bare {1000 * bare_s / n_tests:.1f} ms "
        f"of wall time per test at {args.workers} workers)"
    )
    print(
        f"one sandbox run (start, ~10 tests, exit): median {1000 * runs[len(runs) // 2]:.0f} ms; "
        f"one bare python -c run: {1000 * args.workers * bare_s / n_tests:.0f} ms"
    )


if __name__ == "__main__":
    main()
