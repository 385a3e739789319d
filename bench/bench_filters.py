"""Filter throughput on 100,000 realistic traces (~2,000 characters each).

The traces are synthetic but shaped like model output: English step-by-step prose with
inline LaTeX, 8 samples per problem, a mix of correct and wrong final answers (integers,
fractions, roots), some code-switched (a Chinese sentence inside), some all-Chinese, some
cut off mid-thought (`finish_reason=length`), a few duplicated samples.

Prints traces/s for each filter on its own, for the whole pipeline, and the answer check on
one sample taken apart, each part against the one before on the same pairs: math-verify on
every pair (the baseline), on the distinct pairs only (what dedup buys), `check_answer` in
one process on the distinct pairs (what the exact-number fast paths and the parsed-gold
cache buy), and the process pool (what the workers buy, with their per-check time limits).
Run from the repository root:

    python bench/bench_filters.py [--traces 100000] [--loop-sample 5000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import polars as pl  # noqa: E402
from reasonfactory.filters.pipeline import FILTERS, apply_filters, filter_options, parse_filter_spec  # noqa: E402
from reasonfactory.generators.prompts import parse_completion  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
THINGS = ["apples", "marbles", "tickets", "pages", "coins", "stamps", "bricks", "shells"]
OPENERS = [
    "Let me start by restating what we know.",
    "First, I need to understand what the question asks.",
    "We are looking for a single number at the end.",
    "Okay, so the problem gives us a few quantities to combine.",
]
STEPS = [
    "{name} has {a} {thing}, and each box holds {b} of them, so the boxes hold $"
    "{a} \\times {b} = {ab}$ {thing} in total.",
    "Next, {name} gives away {c} {thing}, which leaves $ {ab} - {c} = {abc} $ {thing}.",
    "To double-check, I add the given-away ones back: ${abc} + {c} = {ab}$, which matches.",
    "The ratio of what is left to what we started with is $\\frac{{{abc}}}{{{ab}}}$.",
    "Hmm, wait. Let me re-read the question to make sure I am using the right quantity.",
    "If we split the remaining {thing} evenly among {d} friends, each gets "
    "$\\frac{{{abc}}}{{{d}}}$.",
    "Since {abc} is {parity}, the split {works} come out even.",
    "Now I compare this with the rough estimate of about {est} {thing} from before.",
]
CHINESE = "然后我们把剩下的数量再检查一遍，确认每一步的计算都没有错误，最后得到答案。"
ALL_CHINESE = (
    "我们先计算每个盒子里的数量，然后把所有盒子加起来，再减去送出去的部分。"
    "接着检查结果是否合理，并把答案写在最后。"
)


def make_answer(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return str(rng.randint(-50, 5000))
    if kind < 0.85:
        return f"\\frac{{{rng.randint(1, 99)}}}{{{rng.randint(2, 99)}}}"
    return f"{rng.randint(2, 9)}\\sqrt{{{rng.choice([2, 3, 5, 6, 7])}}}"


def make_thought(rng: random.Random, target_chars: int) -> str:
    parts = [rng.choice(OPENERS)]
    while sum(len(p) for p in parts) < target_chars:
        a, b, c, d = rng.randint(3, 90), rng.randint(2, 12), rng.randint(1, 20), rng.randint(2, 9)
        ab = a * b
        parts.append(
            rng.choice(STEPS).format(
                name=rng.choice(NAMES),
                thing=rng.choice(THINGS),
                a=a,
                b=b,
                c=c,
                d=d,
                ab=ab,
                abc=ab - c,
                est=round(ab, -1),
                parity="even" if (ab - c) % 2 == 0 else "odd",
                works="can" if (ab - c) % d == 0 else "cannot",
            )
        )
    return "\n\n".join(parts)


def make_traces(n: int, samples: int = 8, seed: int = 0) -> pl.DataFrame:
    """n traces, `samples` per problem: ~65% correct, 5% code-switched, 2% Chinese, 5%
    truncated, 2% exact copies of another sample."""
    rng = random.Random(seed)
    rows = []
    for p in range(-(-n // samples)):
        gold = make_answer(rng)
        question = (
            f"{rng.choice(NAMES)} packs {rng.choice(THINGS)} into boxes for problem {p}. "
            "How many are left after the gifts?"
        )
        prev = None
        for s in range(samples):
            if len(rows) == n:
                break
            roll = rng.random()
            if prev is not None and roll < 0.02:
                text, finish = prev
            else:
                answer = gold if rng.random() < 0.65 else make_answer(rng)
                if answer == gold and rng.random() < 0.2 and gold.lstrip("-").isdigit():
                    answer = f"{gold}.0"  # same value, written differently
                thought = make_thought(rng, 1900)
                if roll < 0.07:
                    cut = thought.index("\n\n", len(thought) // 2)
                    thought = thought[:cut] + "\n\n" + CHINESE + thought[cut:]
                elif roll < 0.09:
                    thought = ALL_CHINESE * 12
                text = f"<think>\n{thought}\n</think>\n\nSo the answer is $\\boxed{{{answer}}}$."
                finish = "stop"
                if 0.09 <= roll < 0.14:
                    text, finish = text[: int(len(text) * 0.7)], "length"
            prev = (text, finish)
            c = parse_completion(text)
            rows.append(
                {
                    "trace_id": f"t_{p:06d}_{s}",
                    "problem_id": f"p_{p:06d}",
                    "thought": c.thought,
                    "response": c.response,
                    "predicted": c.predicted,
                    "correct": None,
                    "meta": json.dumps({"sample_index": s}),
                    "gold": gold,
                    "gold_source": "problem",
                    "finish_reason": finish,
                    "think_closed": c.think_closed,
                    "question": question,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"correct": pl.Boolean})


def benchmark_file(tmp: Path) -> str:
    path = SHARED / "math500.jsonl"
    if path.exists():
        return str(path)
    fallback = tmp / "bench.jsonl"  # a user's clone has no ../shared: a stand-in benchmark
    fallback.write_text(
        "\n".join(
            json.dumps({"problem": f"Compute the sum of {i} and {i + 1}."}) for i in range(500)
        )
    )
    return str(fallback)


def timed(label: str, n: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"  {label:<34} {n:>8,d} traces {dt:8.2f} s {n / dt:>10,.0f} traces/s", flush=True)
    return dt


def plain_loop(pairs) -> list[bool]:
    """The baseline: math-verify called directly, one pair after another, in this process."""
    from math_verify import parse, verify

    return [verify(parse(f"\\boxed{{{g}}}"), parse(f"\\boxed{{{p}}}")) for g, p in pairs]


def fast_loop(pairs) -> list:
    """`check_answer` in this process: exact-number fast paths, golds parsed once."""
    from reasonfactory.generators.verify.answer import check_answer

    golds: dict = {}
    return [check_answer(g, p, golds=golds) for g, p in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--loop-sample", type=int, default=5_000)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average {load} (other work on the machine "
        f"slows every number below); building {args.traces:,d} traces ...",
        flush=True,
    )
    t0 = time.perf_counter()
    traces = make_traces(args.traces)
    chars = traces.select(
        (pl.col("thought").str.len_chars() + pl.col("response").str.len_chars()).mean()
    ).item()
    print(f"built in {time.perf_counter() - t0:.1f} s; mean {chars:,.0f} characters a trace")
    bench = benchmark_file(tmp)
    recipe = [
        "format",
        "answer",
        {"vote": {"min_share": 0.0, "agree": False}},
        {"length": {"max_tokens": 4096}},
        {"language": {"lang": "en"}},
        "dedup",
        {"decontam": {"benchmarks": [bench]}},
    ]
    specs = [parse_filter_spec(item) for item in recipe]
    frame = traces.with_columns(standing=pl.lit(True))
    n = traces.height
    print("\neach filter on its own (first call includes loading lingua / the benchmark index):")
    for spec in specs:
        timed(spec.name, n, lambda s=spec: FILTERS[s.name].fn(frame, filter_options(s)))
    print("\nwhole pipeline (apply_filters: every filter, verdicts and meta for every trace):")
    out = {}
    whole = timed("pipeline", n, lambda: out.update(r=apply_filters(traces, specs)))
    result = out["r"]
    kept = int((result["status"] == "kept").sum())
    reasons = result["reject_reason"].value_counts(sort=True).drop_nulls()
    print(f"  kept {kept:,d}; rejected: " + ", ".join(f"{r} {c:,d}" for r, c in reasons.rows()))
    print(f"  target >= 1,000 traces/s: {'met' if n / whole >= 1000 else 'NOT met'}")
    print("  load average now: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))

    from reasonfactory.generators.verify.answer_pool import check_answers

    k = min(args.loop_sample, n)
    sample = traces.sample(k, seed=1)
    pairs = list(zip(sample["gold"], sample["predicted"].fill_null(""), strict=True))
    unique = list(dict.fromkeys((g, p) for g, p in pairs if p.strip()))
    print(f"\nanswer check, the same {k:,d} random traces ({len(unique):,d} distinct pairs):")
    loop_t = timed("math-verify, every pair", k, lambda: plain_loop(pairs))
    dedup_t = timed("math-verify, distinct pairs", k, lambda: plain_loop(unique))
    fast_t = timed("check_answer, distinct, 1 process", k, lambda: fast_loop(unique))
    pool_t = timed("check_answers: process pool", k, lambda: check_answers(pairs))
    print(f"  dedup:      {loop_t / dedup_t:6.2f}x  (every pair -> distinct pairs)")
    print(f"  fast paths: {dedup_t / fast_t:6.2f}x  (math-verify -> exact numbers, cached golds)")
    print(
        f"  pool:       {fast_t / pool_t:6.2f}x  (one process -> {os.cpu_count()} cores' workers)"
    )
    print(f"  together:   {loop_t / pool_t:6.2f}x  (math-verify on every pair -> check_answers)")


if __name__ == "__main__":
    main()
