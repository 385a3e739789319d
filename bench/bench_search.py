"""Test-time search on the sim: accuracy against generated tokens, at several budgets.

    python bench/bench_search.py [--problems 300] [--budgets 4 8 16] [--prm DIR] [--seed 1]
    python bench/bench_search.py --train-prm DIR [--prm-problems 1500] [--prm-seed 2]
    python bench/bench_search.py --model smollm2-135m-instruct --problems 30 --budgets 8 --prm DIR

`--problems` built-in arithmetic problems (difficulty 3-4: 3 or 4 operations, `--difficulty LO
HI` sets others; `--seed` picks them) on the sim engine at error_rate 0.3. Per budget N, one
run of each method over all problems (one shard each), through the generator functions, with
the engine metered:
- majority@N: `self_output`, N samples, `selection: majority`;
- best-of-N (PRM): N samples, `selection: best_of_n` with the PRM `--prm` (a folder
  `reasonfactory train --kind prm` wrote); left out without `--prm`;
- beam / dvts: N/4 beams (subtrees) of 4 samples each, so N candidate steps per depth as in
  search-and-learn, scored by the PRM (`--prm`) and by `equations` (the arithmetic verifier as
  a step scorer: an oracle on these problems, the ceiling a trained PRM is compared with);
  aggregate `min` for both: a tree export labels each step by its own check, so a path is
  right when its worst step is (with `last`, a path that slipped early and then computed
  right on the wrong value ranks with a clean one);
- tree: `tree` with N rollouts, width 4: MCTS verified by equations and scored against the
  gold, so its accuracy is whether any rollout reached the gold (an oracle too). Its row is
  the same at every N here: `tree` expands each node once (`width` samples, identical ones
  merged, a failed step a dead end), and on the sim a tree is used up within about 6
  rollouts, before any budget above 4 matters (a problem whose 4 samples at some node all
  slipped has no path left).
A method is right on a problem when its answer (the selected sample, the best-ranked path)
equals the gold (`answer_key`). Tokens: completion tokens the engine generated per problem
(the sim counts words and punctuation); PRM forward passes are not counted.

`--train-prm DIR` first makes the PRM the table uses, from OTHER problems: `--prm-problems`
built-in arithmetic problems (difficulty 3-4, `--prm-seed`; any whose question is in the
table's set is dropped) searched by `tree` (6 rollouts, width 4) on the sim at error_rate 0.3
in a throwaway warehouse, `reasonfactory export prm`, then `reasonfactory train --kind prm` (the
CLI, in a subprocess) from a fresh tiny student (`generators/student.py`) with `PRM_TRAIN`;
it prints the PRM's held-out metrics (AUROC of good against bad steps of held-out problems).

`--model NAME` runs the table with a pulled real model through the `vllm` engine instead of
the sim (`reasonfactory models pull`; majority and best-of-N ask for `reply: final_answer`, the
form the model can write; beam, DVTS and tree use the step protocol they need).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.metered import MeteredEngine
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import BeamConfig, DvtsConfig, beam
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.methods.tree import TreeConfig, tree
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.answers import answer_key

PRM_TRAIN = {"kind": "prm", "max_steps": 300, "batch_size": 32, "learning_rate": 3e-3,
             "holdout": 0.1, "logging_steps": 50}  # fmt: skip


def methods(n: int, prm: str | None, real: bool = False) -> list[tuple[str, object, object]]:
    k = max(1, n // 4)
    eq = {"kind": "equations"}
    # A real model on a CPU: its reply form, and lengths that bound a rambling reply.
    sample = {"reply": "final_answer", "max_tokens": 256} if real else {}
    step = {"max_step_tokens": 96, "max_tokens": 512, "max_depth": 8} if real else {}
    out = [("majority@N", self_output, SelfOutputConfig(samples=n, **sample))]
    if prm:
        # `min`: the PRM is trained on tree exports, whose labels judge each step alone (a
        # path is right when all its steps are); `last` would rank a path that slipped early
        # and then computed on the wrong value as high as a clean one.
        scorer = {"kind": "prm", "model": prm, "aggregate": "min"}
        bon = {"by": "best_of_n", "verifier": scorer}
        bon_config = SelfOutputConfig(samples=n, selection=bon, **sample)
        out.append(("best-of-N (PRM)", self_output, bon_config))
        prm_step = {"scorer": scorer, "aggregate": "min", **step}
        out.append(("beam (PRM)", beam, BeamConfig(beams=k, width=4, **prm_step)))
        out.append(("dvts (PRM)", beam, DvtsConfig(beams=k, width=4, **prm_step)))
    for name, cls in (("beam (equations)", BeamConfig), ("dvts (equations)", DvtsConfig)):
        out.append((name, beam, cls(beams=k, width=4, aggregate="min", scorer=eq, **step)))
    out.append(("tree (gold)", tree, TreeConfig(rollouts=n, width=4, **step)))
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


def train_prm(out: Path, n: int, seed: int, avoid: set[str], steps: int) -> dict:
    """Tree data from other problems -> `export prm` -> `train --kind prm`; the PRM's metrics."""
    from common import isolate_prefect

    isolate_prefect()
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.generators.student import build_student
    from reasonfactory.warehouse.store import Warehouse

    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-prm-"))
    others = load_problems("builtin:arithmetic", limit=n, difficulty=(3, 4), seed=seed)
    others = others.filter(~pl.col("question").is_in(sorted(avoid)))
    (tmp / "problems.jsonl").write_text(
        "".join(json.dumps({"question": q, "answer": a}) + "\n"
                for q, a in zip(others["question"], others["gold"], strict=True))
    )  # fmt: skip
    recipe = {
        "name": "prm-data",
        "problems": {"source": str(tmp / "problems.jsonl")},
        "engine": {"kind": "sim", "error_rate": 0.3},
        "generate": {"method": "tree", "rollouts": 6, "width": 4},
    }
    wh = str(tmp / "wh.duckdb")
    summary = run_recipe(parse_recipe(recipe), wh)
    cli = [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()"]
    subprocess.run([*cli, "export", "prm", "--out", str(tmp / "prm"), "-w", wh], check=True)
    settings = PRM_TRAIN | {"max_steps": steps}
    (tmp / "prm.yaml").write_text(json.dumps(settings))
    base = build_student(tmp / "base")
    subprocess.run([*cli, "train", "--kind", "prm", "--data", str(tmp / "prm"), "--base",
                    str(base), "--out", str(out), "--config", str(tmp / "prm.yaml"), "-w", wh],
                   check=True)  # fmt: skip
    with Warehouse(wh, read_only=True) as w:
        metrics = json.loads(w.sql("SELECT metrics FROM models")["metrics"][0])
    print(f"PRM {out}: tree data from {others.height} other problems (seed {seed}, "
          f"{summary['generated']} trees), train --kind prm {settings}")  # fmt: skip
    print("PRM metrics: " + json.dumps(metrics))
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--prm", default=None, help="a PRM folder (train --kind prm)")
    ap.add_argument("--seed", type=int, default=1, help="which problems (not the PRM's)")
    ap.add_argument("--train-prm", default=None, help="train the PRM into this folder first")
    ap.add_argument("--prm-problems", type=int, default=1500)
    ap.add_argument("--prm-seed", type=int, default=2)
    ap.add_argument("--prm-steps", type=int, default=PRM_TRAIN["max_steps"])
    ap.add_argument("--model", default=None, help="a pulled model run by vllm, not the sim")
    ap.add_argument(
        "--difficulty",
        type=int,
        nargs=2,
        default=[3, 4],
        metavar=("LO", "HI"),
        help="operations per problem of the table's problems (the PRM's stay 3-4)",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="METHOD",
        help="rows whose method's first word is one of these (e.g. tree beam)",
    )
    args = ap.parse_args()
    lo, hi = args.difficulty
    problems = load_problems(
        "builtin:arithmetic", limit=args.problems, difficulty=(lo, hi), seed=args.seed
    )
    if args.train_prm:
        train_prm(
            Path(args.train_prm),
            args.prm_problems,
            args.prm_seed,
            set(problems["question"]),
            args.prm_steps,
        )
        args.prm = args.prm or args.train_prm
    gold = {r["problem_id"]: answer_key(r["gold"]) for r in problems.iter_rows(named=True)}
    engine_name = f"vllm {args.model}" if args.model else "sim error_rate 0.3"
    print(f"{problems.height} problems (builtin:arithmetic, difficulty {lo}-{hi}, "
          f"seed {args.seed}), {engine_name}; PRM: {args.prm or 'none'}")  # fmt: skip
    print(f"{'N':>3}  {'method':<18} {'accuracy':>8}  {'tokens/problem':>14}  {'seconds':>7}")
    base = real_engine(args.model) if args.model else None
    for n in args.budgets:
        for name, fn, config in methods(n, args.prm, real=bool(args.model)):
            if args.only and name.split()[0] not in args.only:
                continue
            engine = MeteredEngine(base or SimEngine(error_rate=0.3))
            started = time.perf_counter()
            out = fn(
                problems, engine, config, RunContext("bench", f"{name}-{n}", args.model or "sim")
            )
            seconds = time.perf_counter() - started
            picked = answers(name, out.traces)
            right = sum(answer_key(picked.get(p)) == g for p, g in gold.items())
            print(f"{n:>3}  {name:<18} {right / len(gold):>8.3f}  "
                  f"{engine.meter.tokens / len(gold):>14.1f}  {seconds:>7.1f}")  # fmt: skip


def real_engine(model: str):
    from reasonfactory.generators.engines import VllmEngineConfig, make_engine

    return make_engine(VllmEngineConfig(kind="vllm", model=model, max_model_len=1024))


if __name__ == "__main__":
    main()
