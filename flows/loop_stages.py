"""The loop's stages, each a function that does one step and returns its typed result
(flows/loop_ledger.py): write the problem pools, build the student, generate (plain, or a
compare arm chunk by chunk until it has used its token budget), export, train, evaluate.

A generation's counts and tokens are read from the warehouse after the run (its `progress`
rows and traces), never from one invocation's summary: a run served from the completions
table, or resumed after a kill, counts everything it used.

Not here: the order the stages run in (flows/loop.py) or the ledger that records them.
"""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.loop_config import CompareBudget, LoopArm, LoopConfig, make_pools
from reasonfactory.flows.loop_ledger import (
    Chunk,
    Exported,
    Generation,
    Ledger,
    Level,
    Pools,
    Scored,
    SelfCorrection,
    Student,
    Trained,
)
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.flows.train import train_and_record
from reasonfactory.generators.problems.gym import next_level
from reasonfactory.generators.student import StudentShape, build_student
from reasonfactory.generators.train import TrainConfig
from reasonfactory.generators.verify.steps import fixed_errors
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.store import Warehouse


def write_pools(config: LoopConfig, workdir: Path) -> Pools:
    """Seed, held-out and per-round problem files; the rounds' files have no answers."""
    files = {}
    (workdir / "problems").mkdir(parents=True, exist_ok=True)
    for name, items in make_pools(config).items():
        labelled = not name.startswith("round-")
        path = workdir / "problems" / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for q in items:
                record = {"question": q.question, "difficulty": q.difficulty}
                if labelled:
                    record["answer"] = q.gold
                f.write(json.dumps(record) + "\n")
        files[name] = str(path)
    if config.curriculum is None:
        rounds, levels = tuple(files[f"round-{k}"] for k in range(1, config.rounds + 1)), ()
    else:
        ks = range(1, config.rounds + 1)
        levels = tuple(tuple(files[f"round-{k}-d{d}"] for d in config.levels()) for k in ks)
        rounds = tuple(files[f"round-{k}-d{config.start_level()}"] for k in ks)
    return Pools(files["seed"], files["heldout"], rounds, files.get("round-compare"), levels)


def choose_level(config: LoopConfig, ledger: Ledger, warehouse, k: int) -> Level:
    """Round k's difficulty under the curriculum: round 1 starts at `curriculum.start`; round
    k > 1 moves from round k-1's difficulty by `gym.next_level` (the one rule runs and the
    loop share: up above the band, down below it) on the pass rate of round k-1's generation.

    That pass rate is the share of the generation's traces the loop's own filters accepted
    (kept, or dropped only as a `duplicate` of a kept one): no gold answer decides it. The
    rounds' golds are withheld, and the held-out set is what the loop is measured on, so a
    level chosen from the held-out eval would let held-out answers steer what the loop
    trains on. The price: it is measured on round k-1's model (one model behind the one
    that generates round k) and by the verifiers, not against a gold. A re-run reads the
    same recorded generation, so it picks the same level."""
    levels = config.levels()
    if k == 1:
        return Level(config.start_level(), None, None)
    before = ledger.get(f"r{k - 1}:level", Level)
    made = ledger.get(f"r{k - 1}:generate", Generation)
    with Warehouse(warehouse) as wh:
        (rate,) = wh.con.execute(
            "SELECT avg((status = 'kept' OR reject_reason = 'duplicate')::INT) FROM traces "
            "WHERE run_id = ?",
            [made.run_id],
        ).fetchone()
    at = levels.index(before.difficulty)
    band = config.curriculum.band
    return Level(levels[next_level(at, rate, band, len(levels) - 1)], rate, made.run_id)


def make_student(config: LoopConfig, folder: Path, s: int = 0) -> Student:
    """The untrained student of training seed `s` (its init: `student.seed + s`)."""
    shape = StudentShape(**config.student.model_dump(exclude={"seed"}))
    build_student(folder, shape, seed=config.student.seed + s)
    return Student(str(folder))


def engine_for(config: LoopConfig, model: Path | str) -> dict:
    """The engine settings for a model folder of the loop. A folder trained again at the same
    path (a stage redone) is another model: the vllm engine's identity holds its weights'
    stamp (`VllmEngineConfig.weights`), so it is never served the old one's samples or evals."""
    return {**config.engine, "model": str(model)}


def generation_recipe(
    config: LoopConfig,
    stage: str,
    model: Path | str,
    source: str,
    arm: LoopArm | None = None,
    limit: int | None = None,
) -> Recipe:
    """The recipe of a round's generation (`arm` None) or a compare arm's (its first
    `limit` problems; the limit is not part of the run's identity)."""
    # withheld: no gold the warehouse holds for these problems ever judges the harvest
    problems = {"source": source, "withheld": True}
    if limit is not None:
        problems["limit"] = limit
    return parse_recipe(
        {
            "name": f"{config.name}-{stage}",
            "problems": problems,
            "engine": engine_for(config, model),
            "generate": arm.generate if arm else config.generate,
            "filters": arm.filters if arm and arm.filters is not None else config.filters,
        },
        f"loop {config.name}: generate",
    )


def generation_of(warehouse: str | Path, run_id: str) -> Generation:
    """A generation run as the warehouse holds it: its `progress` rows (problems done, traces
    stored, completion tokens generated and served stored) and its kept traces."""
    with Warehouse(warehouse) as wh:
        problems, traces, generated, reused = wh.sql(
            "SELECT count(*), coalesce(sum(n_traces), 0), coalesce(sum(tokens_generated), 0), "
            "coalesce(sum(tokens_reused), 0) FROM progress WHERE run_id = ?",
            [run_id],
        ).row(0)
        kept = wh.sql(
            "SELECT count(*) AS n FROM traces WHERE run_id = ? AND status = 'kept'", [run_id]
        )["n"][0]
    return Generation(run_id, int(problems), int(traces), int(kept), int(generated), int(reused))


def generate(recipe: Recipe, warehouse: str | Path) -> Generation:
    """Run (or resume) a generation recipe; its result as the warehouse then holds it."""
    summary = run_recipe(recipe, str(warehouse))
    gc.collect()  # let the engine go before the next one starts
    return generation_of(warehouse, summary["run_id"])


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


def generate_within_budget(
    ledger: Ledger,
    stage: str,
    recipe_for: Callable[[int], Recipe],
    warehouse: str | Path,
    pool: int,
    budget: int,
    spec: CompareBudget,
) -> Generation:
    """Generate an arm on the pool's first problems, chunk by chunk (one run, its problem
    limit raised each time: `recipe_for(limit)`), until it has used `budget` completion
    tokens (`Generation.tokens_used`, generated or served stored) within the tolerance, or
    the pool ends. Each chunk is a stage of its own (`STAGE:chunk-N`); a chunk killed half
    way runs again with the same limit, resumes its run, and counts the whole chunk."""
    if budget < 1 or pool < 1:
        raise ValueError(f"{stage}: a budget ({budget}) and a pool ({pool}) of at least one")
    covered, run, n = 0, None, 0
    while run is None or (covered < pool and run.tokens_used < (1 - spec.tolerance) * budget):
        n += 1
        spent = run.tokens_used if run else 0
        limit = next_limit(covered, spent, budget, pool, spec.first_chunk)
        chunk = ledger.once(f"{stage}:chunk-{n}", _chunk, recipe_for, limit, warehouse)
        covered, run = chunk.limit, chunk.generation
    return run


def _chunk(recipe_for: Callable[[int], Recipe], limit: int, warehouse) -> Chunk:
    return Chunk(limit, generate(recipe_for(limit), warehouse))


def export(warehouse: str | Path, run: Generation, out: Path) -> Exported:
    """The run's kept traces as an SFT folder (nothing when it kept none)."""
    if not run.kept:
        return Exported(0, None)
    rows = export_sft(warehouse, out, where=f"run_id = '{run.run_id}'", overwrite=True)["rows"]
    return Exported(rows, str(out))


def train(
    data: list[str], base: Path | str, out: Path, config: TrainConfig, warehouse, parent=None
) -> Trained:
    """Train into `out` through a temporary folder, renamed once the model is complete."""
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # a killed training of this very stage, in our work folder
    row = train_and_record(data, base, tmp, config, warehouse, parent=parent, final_path=out)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return Trained(str(out), row["model_id"])


def evaluate(config: LoopConfig, model: Path | str, heldout: str, warehouse) -> Scored:
    """Greedy (by default) pass@1 on the held-out problems, and the traces' self-correction."""
    model = Path(model)
    recipe = eval_recipe(
        {
            "name": f"{config.name}-{model.name}",
            "problems": {"source": heldout, "name": "heldout"},
            "engine": engine_for(config, model),
        },
        samples=config.eval.samples,
        temperature=config.eval.temperature,
        max_tokens=config.eval.max_tokens,
    )
    rows = run_eval(recipe, warehouse, benchmark=f"{config.name}:heldout")
    gc.collect()
    head = rows.filter((rows["subset"] == "all") & (rows["metric"] == "pass@1")).row(0, named=True)
    fixes = self_correction(warehouse, head["run_id"])
    return Scored(head["run_id"], head["value"], head["ci_low"], head["ci_high"], head["n"], fixes)


def self_correction(warehouse, run_id: str) -> SelfCorrection:
    """Of a run's traces: how many have a false step, have one fixed later (`fixed_errors`),
    and of those how many are right."""
    with Warehouse(warehouse) as wh:
        rows = wh.sql("SELECT thought, correct FROM traces WHERE run_id = ?", [run_id])
    counts = [fixed_errors(t or "") for t in rows["thought"].to_list()]
    correct = [bool(c) for c in rows["correct"].to_list()]
    return SelfCorrection(
        traces=len(counts),
        with_error=sum(errors > 0 for errors, _ in counts),
        with_fix=sum(fixed > 0 for _, fixed in counts),
        fix_correct=sum(fixed > 0 and c for (_, fixed), c in zip(counts, correct, strict=True)),
    )
