"""Judge calls made vs traces checked: the answer filter's LLM judge sees only what the rules
cannot decide.

Input: GSM8K test and MATH-500 golds (`gsm8k_test.jsonl`, `math500.jsonl`) from `--data`
(default: the `shared/data` folder beside the checkout when there is one, else the
repository's committed `data/` samples: 20 and 10 problems). Each gold gets up to six
predictions in the forms model replies take: the gold as written, another number, a
sentence around it, the gold with a unit in words, the number in words, and a list joined
with `and` (a MATH gold with commas). The answer filter with `judge: {when: undecided}`
checks them (the real rules, then the judge), twice, over one warehouse: the first run's
judge calls are the undecided share; the second asks nothing (each judgement is stored).

The judge is tests/scripted_server.py, a stand-in that answers CORRECT when the gold's text
appears in the prediction: this bench counts calls, it does not measure a judge's accuracy.

    python bench/bench_judge.py [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def in_words(n: int) -> str | None:
    """0..999 in English words (a bench fixture: not worth a dependency)."""
    if not 0 <= n < 1000:
        return None
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + in_words(rest))


def predictions(question: str, gold: str) -> list[tuple[str, str]]:
    """(form, prediction) pairs for one gold."""
    out = [("as written", gold), ("sentence", f"So the final answer is {gold}.")]
    number = gold.replace(",", "")
    if number.lstrip("-").isdigit():
        n = int(number)
        out.append(("another number", str(n + 1)))
        unit = "dollars" if "$" in question else "in total"
        out.append(("unit in words", f"{gold} {unit}"))
        words = in_words(n)
        if words:
            out.append(("number in words", words))
    else:
        out.append(("another number", "0"))
        out.append(("unit in words", f"{gold} units"))
    if "," in gold and not number.lstrip("-").isdigit():
        parts = [p.strip() for p in gold.split(",")]
        out.append(("list with and", ", ".join(parts[:-1]) + " and " + parts[-1]))
    return out


def load(data: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(source, question, gold) for GSM8K and MATH-500, read with the project's gold reader."""
    from reasonfactory.generators.problems.sources import read_gold

    rows = []
    for name, field, fmt in (("gsm8k_test", "question", "gsm8k"), ("math500", "problem", "plain")):
        with open(data / f"{name}.jsonl", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()][:limit]
        for r in records:
            gold = read_gold(r["answer"], fmt)
            if gold:
                rows.append((name, r[field], gold))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = [p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()]
    default = shared[0] if shared else ROOT / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--limit", type=int, default=None, help="problems per data set")
    args = parser.parse_args()

    import polars as pl
    from reasonfactory.filters.judge import judge_store
    from reasonfactory.filters.pipeline import apply_filters
    from reasonfactory.warehouse.store import Warehouse
    from scripted_server import ScriptedServer

    problems = load(args.data, args.limit)
    rows = [
        (source, q, gold, form, pred)
        for source, q, gold in problems
        for form, pred in predictions(q, gold)
    ]
    frame = pl.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(len(rows))],
            "problem_id": [f"p{i}" for i in range(len(rows))],
            "predicted": [r[4] for r in rows],
            "meta": ["{}"] * len(rows),
            "gold": [r[2] for r in rows],
            "gold_source": ["problem"] * len(rows),
            "question": [r[1] for r in rows],
        }
    )

    def reply(prompt: str, seed: int) -> str:
        gold = prompt.split("Reference answer:\n", 1)[1].split("\n\nAnswer to grade:", 1)[0]
        pred = prompt.split("Answer to grade:\n", 1)[1].split("\n\nThe answer is", 1)[0]
        return "CORRECT" if gold in pred else "INCORRECT"

    print(f"input: {args.data} (gsm8k_test.jsonl, math500.jsonl): {len(problems)} golds")
    with ScriptedServer(reply) as srv, tempfile.TemporaryDirectory() as tmp:
        engine = {"kind": "openai", "model": "scripted-judge", "base_url": srv.base_url}
        engine["api_key_env"] = "RF_NO_SUCH_KEY"
        spec = {"answer": {"judge": {"engine": engine, "when": "undecided"}}}
        with Warehouse(Path(tmp) / "wh.duckdb") as wh:

            def lookup(keys):
                return wh.fetch("completions", pl.DataFrame({"request_key": keys}))

            for run in (1, 2):
                before, t0 = len(srv.log), time.perf_counter()
                with judge_store(lookup, None) as store:
                    out = apply_filters(frame, [spec])
                fresh = store.fresh()
                if fresh is not None:
                    wh.ingest_all({"completions": fresh})
                calls = len(srv.log) - before
                by = Counter(json.loads(m)["verdicts"].get("answer_by") for m in out["meta"])
                print(
                    f"run {run}: traces checked {out.height}, decided by rules {by['rule']}, "
                    f"sent to the judge {by['judge']} ({by['judge'] / out.height:.1%}), "
                    f"judge calls made {calls}, served from the store {store.reused} "
                    f"({time.perf_counter() - t0:.1f} s)"
                )
                if run == 1:
                    judged = Counter(
                        form
                        for r, m in zip(rows, out["meta"], strict=True)
                        for form in [r[3]]
                        if json.loads(m)["verdicts"].get("answer_by") == "judge"
                    )
                    forms = Counter(r[3] for r in rows)
                    for form, n in forms.items():
                        print(f"  {form:<16} {n:>5} traces, {judged[form]:>5} sent to the judge")


if __name__ == "__main__":
    main()
