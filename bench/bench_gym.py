"""Checker throughput per reasoning-gym family: answers scored per second through the answer
pool (what the `answer` filter, eval and refilter run), 2 worker processes.

Input: the 20 families of tests/test_gym_families.py, `--problems` problems each made by
`load_problems("gym:NAME", seed=11)`; every problem is answered twice, with its own gold and
with the first other problem's gold that differs (so half the answers are wrong, as in the
test). One `score_answers` call per family, timed whole (the pool's start and the scorers'
construction included); then the same answers scored in this process, one by one, for the
scorer's own cost. Prints one line per family, slowest first, names the slowest three (through
the pool, and in-process), and the machine's load average before and after (the machine may
be shared: answers/s through the pool moves with the load, the in-process cost much less).

    python bench/bench_gym.py [--problems 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reasonfactory.generators.problems.sources import load_problems  # noqa: E402
from reasonfactory.generators.verify.answer_pool import PoolOptions, score_answers  # noqa: E402
from reasonfactory.generators.verify.gym_checker import score_gym  # noqa: E402

from tests.test_gym_families import FAMILIES  # noqa: E402


def answers_of(family: str, n: int) -> list[tuple[str, str, str]]:
    problems = load_problems(f"gym:{family}", size=n, seed=11)
    golds = problems["gold"].to_list()
    specs = [json.loads(m)["checker"] for m in problems["meta"]]
    triples = []
    for i, (spec, gold) in enumerate(zip(specs, golds, strict=True)):
        other = next((g for g in golds[i + 1 :] + golds[:i] if g != gold), "none")
        triples += [(spec, gold, gold), (spec, gold, other)]
    return triples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for family, category in FAMILIES.items():
        triples = answers_of(family, args.problems)
        started = time.perf_counter()
        checked = score_answers(triples, PoolOptions(workers=args.workers))
        pooled = time.perf_counter() - started
        started = time.perf_counter()
        for spec, gold, pred in triples:
            score_gym(spec, gold, pred)
        inline = time.perf_counter() - started
        right = sum(c.outcome.value == "correct" for c in checked)
        rows.append((family, category, len(triples), right, pooled, inline))
    rows.sort(key=lambda r: r[2] / r[4])
    print(
        f"{len(rows)} families, {args.problems} problems each, 2 answers per problem "
        f"(gold, another problem's), pool of {args.workers} workers"
    )
    print(
        f"{'family':<28}{'category':<13}{'answers':>8}{'right':>7}{'answers/s':>11}"
        f"{'ms/answer in-process':>22}"
    )
    for family, category, n, right, pooled, inline in rows:
        print(
            f"{family:<28}{category:<13}{n:>8}{right:>7}{n / pooled:>11,.0f}"
            f"{1000 * inline / n:>22.3f}"
        )
    slowest = ", ".join(f"{r[0]} ({r[2] / r[4]:,.0f}/s)" for r in rows[:3])
    print(f"slowest three through the pool: {slowest}")
    costly = sorted(rows, key=lambda r: -r[5] / r[2])[:3]
    slowest = ", ".join(f"{r[0]} ({1000 * r[5] / r[2]:.3f} ms)" for r in costly)
    print(f"slowest three in-process: {slowest}")
    print(
        f"load average (1 min) before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
