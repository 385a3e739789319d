"""Rewards against the filters' verdicts: every stored trace of a mixed run scored by
`reasonfactory.rewards` from its completion text and its problem's `export rl` row, compared
with the verdicts the `format`, `answer`, `steps` and `language` filters stored for it.

Input: the mixed run of tests/rl_mixed.py at `--scale` (default 55: self_output (4 samples) and
distill (2) on 660 `builtin:arithmetic` problems with the `sim` engine, self_output (3) on 120
`builtin:code` problems with the sim's wrong/crashing programs run in the sandbox, `sos` (2)
on 440 `builtin:countdown` problems; an eval run and a decontamination hit left out of the export),
built into a temporary warehouse (or `--warehouse` to reuse one). The sim is a documented
simulator: the figure says the rewards reproduce the filters on this text, not how often a real
model is right. Prints the traces and verdicts compared, the disagreements (0 is the claim),
rewards per second for each reward (one batched call over all traces, timed whole: the
checker pool's and the sandbox's start included) and the load average before and after.

    python bench/bench_rewards.py [--scale 55] [--warehouse PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import isolate_prefect  # noqa: E402

isolate_prefect()

from reasonfactory.filters.rewards import Rewards  # noqa: E402
from reasonfactory.generators.rl_rows import rl_rows  # noqa: E402
from reasonfactory.warehouse.export_rl import RlSelection, rl_problems  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402

from tests.rl_mixed import TRACES, build_mixed, compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=55)
    parser.add_argument("--warehouse", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    if args.warehouse is None or not args.warehouse.exists():
        folder = Path(tempfile.mkdtemp(prefix="rf-bench-rewards-"))
        warehouse = args.warehouse or folder / "wh.duckdb"
        t0 = time.perf_counter()
        build_mixed(warehouse, folder, scale=args.scale)
        print(f"built the mixed run (scale {args.scale}) in {time.perf_counter() - t0:.0f} s")
    else:
        warehouse = args.warehouse
    with Warehouse(warehouse, read_only=True) as wh:
        rows = rl_rows(rl_problems(wh, RlSelection()))
        traces = wh.sql(TRACES)
    rewards = Rewards(answer={"timeout_s": 60})  # no timeouts from this machine's load
    # first calls load lingua's models and math-verify (sympy): once per process, not timed
    rewards.language_reward(["warm up the language detector"])
    rewards.answer_reward(["\\boxed{1}"], gold=["1"], checker=[None])
    t0 = time.perf_counter()
    result = compare(traces, rows, rewards)
    seconds = time.perf_counter() - t0
    n = result["traces"]
    print(f"input: {warehouse} ({rows.height} exported problems)")
    print(f"traces checked: {n} ({', '.join(f'{m} {c}' for m, c in sorted(result['methods']))})")
    kinds = rows["checker"].fill_null("math").str.extract(r"^(\w+)")
    print(f"problems by checker: {dict(sorted(kinds.value_counts().rows()))}")
    timeouts = result["timeouts"]
    total = result["verdicts"] + n - len(timeouts)  # + the stored `correct` of each trace
    if timeouts:
        print(
            f"stored answer checks that had timed out (machine load when the run stored them), "
            f"not compared: {len(timeouts)}; the reward now gives {[s for _, s in timeouts]}"
        )
    agree = total - len(result["disagree"])
    print(f"verdicts compared: {total}; agreement: {agree}/{total} ({agree / total:.2%})")
    for bad in result["disagree"][:10]:
        print("  disagree:", bad)
    print(f"all four rewards over {n} traces: {seconds:.1f} s, {4 * n / seconds:.0f} rewards/s")
    for name, scores in result["scores"].items():
        undecided = sum(s is None for s in scores)
        print(f"  {name:8s} undecided {undecided:5d}  mean {_mean(scores):.3f}")
    for name, secs in timed(traces, rows, rewards).items():
        print(f"  {name:8s} {n / secs:8.0f} rewards/s ({secs:.1f} s)")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")


def _mean(scores) -> float:
    decided = [s for s in scores if s is not None]
    return sum(decided) / len(decided) if decided else float("nan")


def timed(traces, rows, rewards) -> dict[str, float]:
    """Seconds of one batched call of each reward over every trace."""
    from tests.rl_mixed import stored_completion

    frame = traces.join(rows.select("problem_id", "gold", "checker"), on="problem_id")
    texts = [
        stored_completion(t, r, c)
        for t, r, c in zip(frame["thought"], frame["response"], frame["think_closed"], strict=True)
    ]
    kwargs = {"gold": frame["gold"].to_list(), "checker": frame["checker"].to_list()}
    out = {}
    for name in ("answer", "format", "steps", "language"):
        t0 = time.perf_counter()
        getattr(rewards, f"{name}_reward")(texts, **kwargs)
        out[name] = time.perf_counter() - t0
    return out


if __name__ == "__main__":
    main()
