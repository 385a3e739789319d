"""Filter cost through the path the CLI runs: `reasonfactory refilter --run RUN --recipe F.yaml`.

Input: GSM8K test problems and their human solutions (`shared/data/gsm8k_test.jsonl` beside
the checkout, 1,319 problems; without it, the repository's 20-problem sample
`data/gsm8k_test.jsonl`, too small for a timing: the output says so). Real text, 8 samples
per problem, as a file of a model's outputs (`engine: {kind: predictions}`), each written
`<think>\n` + the solution's lines (calculator notes removed), one paragraph each +
`\n</think>\n\nThe answer is \boxed{N}.`:

  0 the solution                  1 an exact copy of 0 (dedup)
  2 the solution as GSM8K writes it, with its `<<48/2=24>>` calculator notes
  3 one step's written result changed (+1): a false step, the right answer
  4 the final answer changed (+1)   5-6 other problems' solutions (wrong, real text)
  7 the solution cut at 70% (no </think>: format)

so half of a problem's samples give the gold answer (vote's majority, min_share 0.5).

The traces go into a fresh warehouse with `run_recipe` (what `reasonfactory run` does with a
predictions engine; filters: [format]). Then the `refilter` flow (`filters_from_file` +
`run_refilter`, what the CLI calls) applies growing filter sets to the same stored run:
none (the flow's own cost: read, rebuild the working columns, write every trace back), then
format, answer, vote, length, language, dedup, decontam (against MATH-500) and steps, each
set the one before plus one filter. A filter's cost is its set's CPU time less the previous
set's: what adding it costs (each filter here judges every trace, rejected or not; dedup
picks the copy to keep among those still standing). CPU time (this process and the answer
check's pool workers) is steadier than wall time when other work shares the cores; a
difference of a few tenths of a second is still noise (it can come out negative). Every set
runs `--repeats` times, interleaved (forward, then backward: a run right after a heavy one
is slower), after one untimed warm-up (lingua's models, the benchmark index); the least
time of each set counts, the slowest wall time is shown beside it. Wall times are the
flow's own `seconds` (Prefect's API already up). This prints numbers; it is not a test.

    python bench/bench_filters.py [--data PATH] [--samples 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from common import ROOT, isolate_prefect

isolate_prefect()

import yaml  # noqa: E402
from bench_verifiers import RESULT, perturb, strip_notes  # noqa: E402
from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402
from reasonfactory.flows.refilter import filters_from_file, run_refilter  # noqa: E402

# The team's data sets lie in a `shared/data` folder beside the checkout (/work/shared/data
# for /work/main and for worktrees a level deeper); a user's clone has none.
SHARED = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
SAMPLE = ROOT / "data"


def default_data() -> tuple[Path, Path, str]:
    """(GSM8K file, MATH-500 file, a note): the shared sets, else the repository's samples."""
    if (SHARED / "gsm8k_test.jsonl").exists():
        return SHARED / "gsm8k_test.jsonl", SHARED / "math500.jsonl", ""
    return (
        SAMPLE / "gsm8k_test.jsonl",
        SAMPLE / "math500.jsonl",
        f"{SHARED} is absent: using the repository's small samples (too few traces for a "
        "timing that means anything; run where the full GSM8K test set is)",
    )


def answer_line(answer: str) -> str:
    return f"\n</think>\n\nThe answer is \\boxed{{{answer}}}."


def think(lines: list[str]) -> str:
    return "<think>\n" + "\n\n".join(strip_notes(line) for line in lines)


def make_predictions(records: list[dict], samples: int, seed: int = 0) -> tuple[list[dict], dict]:
    """Predictions lines (question, response), `samples` per problem in the mix the module
    docstring lists (sample k >= 8 repeats kind k % 8); and how many of each kind."""
    rng = random.Random(seed)
    solved = []
    for r in records:
        lines = [x for x in r["answer"].split("\n") if x.strip() and not x.startswith("####")]
        solved.append((r["question"], lines, r["answer"].split("####")[-1].strip()))
    out, kinds = [], {}
    for i, (question, lines, gold) in enumerate(solved):
        for k in range(samples):
            kind = k % 8
            if kind in (0, 1):
                text, name = think(lines) + answer_line(gold), "solution" if kind == 0 else "copy"
            elif kind == 2:  # GSM8K as written, calculator notes and all
                name = "solution with notes"
                text = "<think>\n" + "\n\n".join(lines) + answer_line(gold)
            elif kind == 3:
                name, text = "false step", think(lines) + answer_line(gold)
                steps = [(j, m) for j, line in enumerate(lines) for m in RESULT.finditer(line)]
                if steps:
                    j, m = rng.choice(steps)
                    new = perturb(m.group(1), "plus_one", rng)
                    changed = lines[:j] + [lines[j][: m.start(1)] + new + lines[j][m.end(1) :]]
                    text = think(changed + lines[j + 1 :]) + answer_line(gold)
            elif kind == 4:
                wrong = perturb(gold, "plus_one", rng) if gold else None
                name, text = "wrong answer", think(lines) + answer_line(wrong or gold + "1")
            elif kind < 7:
                _, other, answer = solved[(i + rng.randrange(1, len(solved))) % len(solved)]
                name, text = "other problem's solution", think(other) + answer_line(answer)
            else:
                full = think(lines) + answer_line(gold)
                name, text = "cut at 70%", full[: int(len(full) * 0.7)]
            kinds[name] = kinds.get(name, 0) + 1
            out.append({"question": question, "response": text})
    return out, kinds


FILTER_SETS = [
    ("format", "format"),
    ("answer", "answer"),
    ("vote", {"vote": {"min_share": 0.5, "agree": True}}),
    ("length", {"length": {"max_tokens": 4096}}),
    ("language", {"language": {"lang": "en"}}),
    ("dedup", "dedup"),
    ("decontam", None),  # filled in with the benchmark file
    ("steps", {"steps": {"min_claims": 1}}),
]


def write_filter_files(folder: Path, math500: Path) -> list[tuple[str, Path]]:
    """`none.yaml`, then one file per added filter (`+format.yaml` ... `+steps.yaml`)."""
    items, out = [], []
    for label, item in [("none", None), *FILTER_SETS]:
        if label == "decontam":
            item = {"decontam": {"benchmarks": [str(math500)]}}
        if item is not None:
            items.append(item)
        path = folder / f"{label if label == 'none' else '+' + label}.yaml"
        path.write_text(yaml.safe_dump({"filters": list(items)}, sort_keys=False))
        out.append((label, path))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="GSM8K JSONL (question, answer)")
    parser.add_argument("--math500", type=Path, help="benchmark for decontam")
    parser.add_argument("--samples", type=int, default=8, help="samples per problem")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data, math500, note = default_data()
    data, math500 = args.data or data, args.math500 or math500
    if note and not args.data:
        print("note: " + note)
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-filters-"))
    try:
        _bench(args, data, math500, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args, data: Path, math500: Path, tmp: Path) -> None:
    records = [json.loads(x) for x in data.read_text(encoding="utf-8").splitlines() if x.strip()]
    preds, kinds = make_predictions(records, args.samples)
    (tmp / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    chars = sum(len(p["response"]) for p in preds) / len(preds)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"input: {data} ({len(records):,d} problems), {args.samples} samples each = "
        f"{len(preds):,d} traces of real text, mean {chars:,.0f} characters; "
        + ", ".join(f"{name} {n:,d}" for name, n in kinds.items())
    )
    print(f"machine: {os.cpu_count()} cores, load average {load} (other work slows every figure)")
    recipe = {
        "name": "bench-filters",
        "problems": {"source": str(data), "answer_format": "gsm8k"},
        "engine": {"kind": "predictions", "model": "gsm8k-human", "path": str(tmp / "preds.jsonl")},
        "generate": {"method": "self_output", "samples": args.samples},
        "filters": ["format"],
    }
    warehouse = str(tmp / "bench.duckdb")
    t0 = time.perf_counter()
    s = run_recipe(parse_recipe(recipe), warehouse)
    print(
        f"stored with run_recipe (engine: predictions): run {s['run_id']}, {s['generated']:,d} "
        f"traces in {time.perf_counter() - t0:.1f} s (Prefect's API start included)"
    )
    sets = write_filter_files(tmp, math500)
    warm = run_refilter(s["run_id"], warehouse, filters_from_file(str(sets[-1][1])))
    print(f"warm-up: every filter once, {warm['seconds']:.2f} s (untimed)")
    wall: dict[str, list[float]] = {label: [] for label, _ in sets}
    cpu: dict[str, list[float]] = {label: [] for label, _ in sets}
    summaries: dict[str, dict] = {}
    for r in range(args.repeats):  # forward, then backward: no set always follows the same one
        for label, path in sets if r % 2 == 0 else sets[::-1]:
            before = cpu_seconds()
            summaries[label] = run_refilter(s["run_id"], warehouse, filters_from_file(str(path)))
            cpu[label].append(cpu_seconds() - before)
            wall[label].append(summaries[label]["seconds"])
    report([label for label, _ in sets], wall, cpu, summaries, args.repeats)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the answer check's pool
    workers): steadier than wall time when other work shares the cores."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def report(labels: list[str], wall: dict, cpu: dict, summaries: dict, repeats: int) -> None:
    n = summaries["none"]["traces"]
    best = {label: min(t) for label, t in wall.items()}
    least = {label: min(t) for label, t in cpu.items()}
    print(
        f"\nrefilter flow on the same {n:,d} traces, filter sets growing by one filter; fastest "
        f"wall time of {repeats} runs (the slowest beside it) and least CPU time; what each "
        "filter adds, in CPU seconds and as a share of the whole set's:"
    )
    print(
        f"  {'set':<11} {'wall s':>7} {'slowest':>7} {'traces/s':>9} {'CPU s':>6} "
        f"{'filter adds, CPU':>20} {'kept':>7}"
    )
    prev, full = None, least[labels[-1]]
    for label in labels:
        t, c = best[label], least[label]
        add = "" if prev is None else f"{c - least[prev]:+6.2f} s ({(c - least[prev]) / full:4.0%})"
        name = label if label == "none" else "+" + label
        print(
            f"  {name:<11} {t:7.2f} {max(wall[label]):7.2f} {n / t:9,.0f} {c:6.2f} {add:>20} "
            f"{summaries[label]['kept']:7,d}"
        )
        prev = label
    for what, key in (
        ("every filter, steps too", "steps"),
        ("every filter but steps", "decontam"),
        ("no filter (read, write)", "none"),
    ):
        print(
            f"{what:<24} {n / best[key]:7,.0f} traces/s ({best[key]:5.2f} s wall, "
            f"{least[key]:5.2f} s CPU)"
        )
    rejected = summaries["steps"]["rejected"]
    print("rejected with every filter: " + ", ".join(f"{r} {c:,d}" for r, c in rejected.items()))


if __name__ == "__main__":
    main()
