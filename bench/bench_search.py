"""Test-time search on the sim: accuracy against generated tokens, at several budgets.

    python bench/bench_search.py [--problems 300] [--budgets 4 8 16] [--prm DIR] [--seed 1]

`--problems` built-in arithmetic problems (difficulty 3-4: 3 or 4 operations; `--seed` picks
them) on the sim engine at error_rate 0.3. Per budget N, one run of each method over all
problems (one shard each), through the generator functions, with the engine metered:
- majority@N: `self_output`, N samples, `selection: majority`;
- best-of-N (PRM): N samples, `selection: best_of_n` with the PRM `--prm` (a folder
  `reasonfactory train --kind prm` wrote); left out without `--prm`;
- beam / dvts: N/4 beams (subtrees) of 4 samples each, so N candidate steps per depth as in
  search-and-learn, scored by the PRM (`--prm`) and by `equations` (the arithmetic verifier as
  a step scorer: an oracle on these problems, the ceiling a trained PRM is compared with);
  aggregate `min` for equations (it judges a step alone), `last` for the PRM;
- tree: `tree` with N rollouts, width 4: MCTS verified by equations and scored against the
  gold, so its accuracy is whether any rollout reached the gold (an oracle too).
A method is right on a problem when its answer (the selected sample, the best-ranked path)
equals the gold (`answer_key`). Tokens: completion tokens the engine generated per problem
(the sim counts words and punctuation); PRM forward passes are not counted.
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import BeamConfig, DvtsConfig, beam
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.methods.tree import TreeConfig, tree
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.answers import answer_key


def methods(n: int, prm: str | None) -> list[tuple[str, object, object]]:
    k = max(1, n // 4)
    eq = {"kind": "equations"}
    out = [("majority@N", self_output, SelfOutputConfig(samples=n))]
    if prm:
        bon = {"by": "best_of_n", "verifier": {"kind": "prm", "model": prm}}
        out.append(("best-of-N (PRM)", self_output, SelfOutputConfig(samples=n, selection=bon)))
        scorer = {"kind": "prm", "model": prm}
        out.append(("beam (PRM)", beam, BeamConfig(beams=k, width=4, scorer=scorer)))
        out.append(("dvts (PRM)", beam, DvtsConfig(beams=k, width=4, scorer=scorer)))
    out.append(("beam (equations)", beam, BeamConfig(beams=k, width=4, aggregate="min", scorer=eq)))
    out.append(("dvts (equations)", beam, DvtsConfig(beams=k, width=4, aggregate="min", scorer=eq)))
    out.append(("tree (gold)", tree, TreeConfig(rollouts=n, width=4)))
    return out


def answers(name: str, traces: pl.DataFrame) -> dict[str, str | None]:
    """The method's one answer per problem."""
    picked: dict[str, str | None] = {}
    for row in traces.iter_rows(named=True):
        meta = json.loads(row["meta"])
        if "selection" in meta and not meta["selection"]["selected"]:
            continue
        if meta.get("rank", 0) != 0:
            continue
        picked[row["problem_id"]] = row["predicted"]
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--prm", default=None, help="a PRM folder (train --kind prm)")
    ap.add_argument("--seed", type=int, default=1, help="which problems (not the PRM's)")
    args = ap.parse_args()
    problems = load_problems(
        "builtin:arithmetic", limit=args.problems, difficulty=(3, 4), seed=args.seed
    )
    gold = {r["problem_id"]: answer_key(r["gold"]) for r in problems.iter_rows(named=True)}
    print(f"{problems.height} problems (builtin:arithmetic, difficulty 3-4, seed {args.seed}), "
          f"sim error_rate 0.3; PRM: {args.prm or 'none'}")  # fmt: skip
    print(f"{'N':>3}  {'method':<18} {'accuracy':>8}  {'tokens/problem':>14}  {'seconds':>7}")
    for n in args.budgets:
        for name, fn, config in methods(n, args.prm):
            engine = MeteredEngine(SimEngine(error_rate=0.3))
            started = time.perf_counter()
            out = fn(problems, engine, config, RunContext("bench", f"{name}-{n}", "sim"))
            seconds = time.perf_counter() - started
            picked = answers(name, out.traces)
            right = sum(answer_key(picked.get(p)) == g for p, g in gold.items())
            print(f"{n:>3}  {name:<18} {right / len(gold):>8.3f}  "
                  f"{engine.meter.tokens / len(gold):>14.1f}  {seconds:>7.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
