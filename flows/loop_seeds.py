"""The loop's evidence across training seeds (`seeds: N`): each model's held-out pass@1 per
seed, their mean and spread (`seed_table`), and the test of a round against its control
across seeds and held-out problems (`paired_bootstrap`).

Why a bootstrap over seeds and problems, not McNemar: McNemar (warehouse/evals.py) treats
each trained model as fixed, so it speaks for one training run; swapping two rows of the
same data once moved a round from 12.2% to 15.8%. Here both are drawn again in each
replicate: N seed indices with replacement (seed s of the round is paired with seed s of
the control: both start from cold start s), and the held-out problems with replacement (the
same problems for both sides: paired). The difference of the means over the drawn cells is
the statistic; its 2.5/97.5 percentiles are the 95% interval, and p is twice the smaller
tail beyond 0. A mixed model (problem and seed as random effects) would say the same thing
with a model's assumptions and a dependency; with 3 seeds neither can estimate the seed
variance well, and the bootstrap's interval is then too narrow rather than too wide: the
table says how many seeds it rests on.

Not here: running the seeds (flows/loop.py) or anything checked against withheld answers
(bench/bench_loop.py).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from reasonfactory.flows.loop_config import LoopConfig
from reasonfactory.flows.loop_ledger import Ledger, Scored
from reasonfactory.warehouse.store import Warehouse


def seeded(stage: str, s: int) -> str:
    """Seed s's name of a stage: seed 0 keeps the plain name (`r1:train`, `r1:train:s1`).

    >>> seeded("r1:eval", 0), seeded("r1:eval", 2)
    ('r1:eval', 'r1:eval:s2')
    """
    return stage if s == 0 else f"{stage}:s{s}"


def seed_scores(ledger: Ledger, stage: str, seeds: int) -> list[Scored]:
    """The evals of a stage (`r1:eval`, `r1:control:eval`, `cmp:tree:eval`) for each seed
    finished so far."""
    found = (ledger.get(seeded(stage, s), Scored) for s in range(seeds))
    return [r for r in found if r is not None]


def spread(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where there are too few values).

    >>> spread([0.1, 0.3])
    (0.2, 0.1414)
    """
    if not values:
        return None, None
    sd = round(statistics.stdev(values), 4) if len(values) > 1 else None
    return round(statistics.fmean(values), 4), sd


def model_stages(config: LoopConfig) -> list[tuple[str, str]]:
    """(model, eval stage) of every model the loop trains per seed."""
    rows = [("round-0 (cold start)", "cold:eval")]
    for k in range(1, config.rounds + 1):
        rows.append((f"round-{k}", f"r{k}:eval"))
        if config.control:
            rows.append((f"control-{k}", f"r{k}:control:eval"))
    rows += [(f"arm {name}", f"cmp:{name}:eval") for name in config.compare]
    return rows


def seed_table(ledger: Ledger, config: LoopConfig) -> list[dict]:
    """One row per model: held-out pass@1 of each seed, their mean and standard deviation."""
    rows = []
    for model, stage in model_stages(config):
        values = [r.pass1 for r in seed_scores(ledger, stage, config.seeds)]
        mean, sd = spread(values)
        rows.append({"model": model, "per_seed": values, "mean": mean, "sd": sd})
    return rows


def outcomes(warehouse, run_ids: list[str]) -> list[dict[str, bool]]:
    """For each eval run, problem_id -> right (one sample a problem)."""
    with Warehouse(warehouse, read_only=True) as wh:
        return [
            {
                p: bool(c)
                for p, c in wh.sql(
                    "SELECT problem_id, coalesce(correct, false) FROM traces WHERE run_id = ?", [r]
                ).rows()
            }  # fmt: skip
            for r in run_ids
        ]


@dataclass(frozen=True)
class Paired:
    """A round against its control across seeds and problems (`paired_bootstrap`)."""

    seeds: int
    problems: int
    diff: float  # mean pass@1 of the round minus the control's, over seeds and problems
    low: float
    high: float
    p: float
    reps: int


def paired_bootstrap(
    a: list[dict[str, bool]], b: list[dict[str, bool]], reps: int = 2000, seed: int = 0
) -> Paired:
    """Seed s of `a` against seed s of `b` on the problems every run answered; see the
    module docstring for why this test and what it assumes.

    >>> a = [{"p1": True, "p2": True}, {"p1": True, "p2": False}]
    >>> b = [{"p1": False, "p2": False}, {"p1": False, "p2": True}]
    >>> r = paired_bootstrap(a, b, reps=200)
    >>> r.diff, r.seeds, r.problems
    (0.5, 2, 2)
    """
    if not a or len(a) != len(b):
        raise ValueError(f"a paired test needs the same seeds on both sides ({len(a)}, {len(b)})")
    problems = sorted(set.intersection(*(set(x) for x in a + b)))
    if not problems:
        raise ValueError("no held-out problem answered by every run")
    d = [[int(x[p]) - int(y[p]) for p in problems] for x, y in zip(a, b, strict=True)]
    n_s, n_p = len(d), len(problems)
    diff = sum(map(sum, d)) / (n_s * n_p)
    rng = random.Random(seed)
    stats = []
    for _ in range(reps):
        rows = [d[rng.randrange(n_s)] for _ in range(n_s)]
        cols = [rng.randrange(n_p) for _ in range(n_p)]
        stats.append(sum(row[c] for row in rows for c in cols) / (n_s * n_p))
    stats.sort()
    below = sum(s <= 0 for s in stats) / reps
    above = sum(s >= 0 for s in stats) / reps
    return Paired(
        seeds=n_s,
        problems=n_p,
        diff=round(diff, 4),
        low=round(stats[int(0.025 * reps)], 4),
        high=round(stats[min(reps - 1, int(0.975 * reps))], 4),
        p=round(min(1.0, 2 * min(below, above)), 4),
        reps=reps,
    )


def round_against_control(ledger: Ledger, config: LoopConfig, warehouse, k: int) -> Paired | None:
    """Round k against its control over the seeds both finished (None: not evaluated yet)."""
    mine = seed_scores(ledger, f"r{k}:eval", config.seeds)
    ctl = seed_scores(ledger, f"r{k}:control:eval", config.seeds)
    n = min(len(mine), len(ctl))
    if n == 0:
        return None
    runs = outcomes(warehouse, [r.run_id for r in mine[:n] + ctl[:n]])
    return paired_bootstrap(runs[:n], runs[n:])
