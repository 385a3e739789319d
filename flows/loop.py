"""The self-improvement loop (STaR / rStar-Math self-evolution), as a Prefect flow.

    cold start: a student (built from scratch, or `base`) trained on a SMALL labelled seed
                set distilled from a teacher engine
    round k:    the current model samples NEW problems whose gold answers the loop never sees
                -> filters keep traces whose steps are all true and whose answer the samples
                agree on -> export -> train the next model on the seed set plus all verified
                data so far -> evaluate on held-out problems
    control k:  the same number of training steps on the seed set alone (compute-matched)
    compare:    after round 1, each arm makes round 1's data its own way from the cold start,
                on round 1's problems in order, until it has used the same budget of
                completion tokens (`CompareBudget`); its model trains like round 1's

    seeds:      with `seeds: N`, the cold start, each round, each control and each arm train
                N times on the same data (seed s: its own student init, data order and
                previous model; stages and folders of seed s > 0 end in `:sN` / `-sN`); a
                round's data comes from seed 0's model
    curriculum: with `curriculum`, round k's problems come from the pool of the difficulty
                `choose_level` picks from round k-1's gold-free pass rate (stage `rK:level`)

Problems come from one built-in family, made once and dealt into disjoint pools with the
same mix (generators/problems/pools.py):
the seed set (with gold, for the teacher), the held-out set (with gold, only `eval` reads
it) and the rounds' pools, written to JSONL files WITHOUT their answers, so nothing the loop
trains on can depend on a gold answer of a self-generated round or on a held-out problem;
their runs withhold answers (`problems.withheld`), so no gold the warehouse holds for them
judges a harvest either.

Resumable per stage: every stage runs through `Ledger.once`, which records its typed result
in `WORKDIR/state.json` once its output is complete (a model folder is saved under a
temporary name and renamed), so a killed loop starts again at the stage it was in;
generation and eval runs resume through the warehouse like any run.

Here: the order of the stages. The config is flows/loop_config.py, the stages
flows/loop_stages.py, their results and the ledger flows/loop_ledger.py, the tables
flows/loop_tables.py.
"""

from __future__ import annotations

import importlib.util
import os
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger
from reasonfactory.flows.loop_config import VLLM_CPU_ENV, LoopConfig, load_loop
from reasonfactory.flows.loop_ledger import Generation, Ledger, Pools
from reasonfactory.flows.loop_seeds import seeded
from reasonfactory.flows.loop_stages import (
    choose_level,
    evaluate,
    export,
    generate,
    generate_within_budget,
    generation_recipe,
    make_student,
    train,
    write_pools,
)
from reasonfactory.flows.preflight import VLLM_INSTALL
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.generators.pulled_models import resolve_model
from reasonfactory.warehouse.errors import UserError

__all__ = ["loop", "run_loop"]


@flow(name="loop", log_prints=False)
def loop(config_data: dict, workdir: str) -> None:
    """Run (or resume) a loop; every stage's result lands in WORKDIR/state.json."""
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
    pools = ledger.once("problems", write_pools, config, work)

    # Cold start: the seed set, distilled from the teacher, trains the first model(s).
    seeds = range(config.seeds)
    distilled = ledger.once("cold:distill", generate, teacher_recipe(config, pools), warehouse)
    seed = ledger.once("cold:export", export, warehouse, distilled, exports / "seed")
    if seed.folder is None:
        raise UserError(f"loop {config.name}: the teacher kept no seed trace to cold-start on")
    seed_data = [seed.folder]
    starts, colds = [], []
    for s in seeds:
        if config.base is None:
            student = models / seeded_folder("student-0", s)
            starts.append(
                Path(ledger.once(seeded("cold:student", s), make_student, config, student, s).path)
            )
        else:
            starts.append(Path(resolve_model(config.base)))  # a folder, or a pulled name
        cold = ledger.once(
            seeded("cold:train", s), train, seed_data, starts[s],
            models / seeded_folder("round-0", s), seeded_train(config.train, s), warehouse,
        )  # fmt: skip
        colds.append(cold.path)
        ledger.once(seeded("cold:eval", s), evaluate, config, cold.path, pools.heldout, warehouse)
    log.info("cold start trained: %s", colds)

    def parent(previous: str, s: int = 0) -> Path:
        return Path(previous) if config.train_from == "previous" else starts[s]

    current, control = list(colds), list(colds)
    data = list(seed_data)
    for k in range(1, config.rounds + 1):
        r, steps = f"r{k}", config.round_train(k)
        # Seed 0's model makes the round's data; every seed trains on the same data.
        source = pools.rounds[k - 1]
        if config.curriculum is not None:
            level = ledger.once(f"{r}:level", choose_level, config, ledger, warehouse, k)
            source = pools.levels[k - 1][config.levels().index(level.difficulty)]
        recipe = generation_recipe(config, f"{r}:generate", current[0], source)
        made = ledger.once(f"{r}:generate", generate, recipe, warehouse)
        # Nothing verified this round: the next model trains on what there was.
        rows = ledger.once(f"{r}:export", export, warehouse, made, exports / r)
        data = [*data, rows.folder] if rows.folder else data
        for s in seeds:
            nxt = models / seeded_folder(f"round-{k}", s)
            current[s] = ledger.once(
                seeded(f"{r}:train", s), train, data, parent(current[s], s), nxt,
                seeded_train(steps, s), warehouse,
            ).path  # fmt: skip
            ledger.once(
                seeded(f"{r}:eval", s), evaluate, config, current[s], pools.heldout, warehouse
            )
            if config.control:
                ctl = models / seeded_folder(f"control-{k}", s)
                control[s] = ledger.once(
                    seeded(f"{r}:control:train", s), train, seed_data, parent(control[s], s),
                    ctl, seeded_train(steps, s), warehouse,
                ).path  # fmt: skip
                ledger.once(
                    seeded(f"{r}:control:eval", s), evaluate, config, control[s], pools.heldout,
                    warehouse,
                )  # fmt: skip
        log.info("round %d done", k)
        if k == 1:
            compare(ledger, config, pools, warehouse, colds, seed_data, parent)


def seeded_folder(name: str, s: int) -> str:
    return name if s == 0 else f"{name}-s{s}"


def seeded_train(train_config, s: int):
    """Seed s's training settings: only the seed (data order, and init where one is drawn)
    differs; data and steps are the same."""
    return train_config.model_copy(update={"seed": train_config.seed + s})


def teacher_recipe(config: LoopConfig, pools: Pools) -> Recipe:
    """The teacher's greedy traces of the seed set, kept when right: the cold start's data."""
    recipe = {
        "name": f"{config.name}-seed",
        "problems": {"source": pools.seed},
        "engine": config.teacher,
        "generate": {"method": "self_output", "samples": 1, "temperature": 0.0},
        "filters": ["format", "answer"],
    }
    return parse_recipe(recipe, f"loop {config.name}: teacher")


def compare(
    ledger: Ledger, config: LoopConfig, pools: Pools, warehouse: str, colds, seed_data, parent
) -> None:
    """Each arm makes round 1's data its own way, from the same cold start (seed 0's) on the
    same problems in order, until it has used the budget's completion tokens; its model
    trains the same steps from the same parent as round 1's, once per seed."""
    if not config.compare:
        return
    work = Path(warehouse).parent
    budget = config.compare_budget.tokens or ledger.get("r1:generate", Generation).tokens_used
    if budget < 1:
        raise UserError(
            f"loop {config.name}: round 1 used no completion tokens, so the compare arms have "
            "no budget; set compare_budget.tokens"
        )
    pool = sum(1 for line in Path(pools.compare).read_text(encoding="utf-8").splitlines() if line)
    steps = config.round_train(1)
    for name, arm in config.compare.items():
        c = f"cmp:{name}"
        recipe_for = partial(
            generation_recipe, config, f"{c}:generate", colds[0], pools.compare, arm
        )
        made = ledger.once(
            f"{c}:generate",
            generate_within_budget,
            *(ledger, f"{c}:generate", recipe_for, warehouse, pool, budget, config.compare_budget),
        )
        rows = ledger.once(f"{c}:export", export, warehouse, made, work / "exports" / c)
        data = [*seed_data, rows.folder] if rows.folder else seed_data
        for s in range(config.seeds):
            out = work / "models" / seeded_folder(f"compare-{name}", s)
            trained = ledger.once(
                seeded(f"{c}:train", s), train, data, parent(colds[s], s), out,
                seeded_train(steps, s), warehouse,
            )  # fmt: skip
            ledger.once(
                seeded(f"{c}:eval", s), evaluate, config, trained.path, pools.heldout, warehouse
            )


def run_loop(path: str | Path) -> tuple[Ledger, LoopConfig]:
    """Run the loop file's flow; returns its ledger (every stage's typed result) and config.
    A user error comes back as `UserError`."""
    config, workdir = load_loop(path)
    Ledger(workdir)  # an unreadable or old state.json: say so before anything starts
    if config.engine.get("kind") == "vllm" and importlib.util.find_spec("vllm") is None:
        # before minutes of training a cold start that nothing could then serve
        raise UserError(f"{path}: the loop's student is served by vLLM; {VLLM_INSTALL}")
    state = loop(config.model_dump(mode="json"), str(workdir), return_state=True)
    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, UserError):
            raise exc
        state.result()  # a bug: re-raise it with its traceback
    return Ledger(workdir), config
