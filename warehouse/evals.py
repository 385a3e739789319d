"""Benchmark metrics from stored samples: pass@1, pass@k, maj@k, with 95% intervals.

A model is evaluated by sampling `n` completions per problem (greedy: `n = 1`); every sample
is checked against the gold. From those outcomes, per problem:

- pass@1 is the mean over samples of "correct" (`c / n`);
- pass@k is the unbiased estimator of Chen et al. 2021 (`warehouse.stats.pass_at_k`);
- maj@k is whether the most frequent answer among the first `k` samples is right; samples
  without an answer do not vote; a tie between answers scores the share of the tied answers
  that are right (the expected outcome of breaking the tie at random).

Over problems, the value is the mean of the per-problem numbers. Its 95% interval is
Wilson's when every per-problem outcome is 0 or 1 (greedy pass@1, maj@k without ties,
pass@n), otherwise the normal interval of the mean, clipped to [0, 1].
Rows come per subset: `all`, each `source=...` and each `difficulty=...`. Two models
scored on the same problems are compared with the exact McNemar test (`mcnemar_exact` on
`discordant_pairs`).

Not here: sampling and checking (the generate flow does both) and normalising answers for
the vote (the caller passes answer keys).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
from reasonfactory.warehouse.schema import EVALS
from reasonfactory.warehouse.stats import pass_at_k

Z95 = 1.959963984540054

# The status of an eval's traces: exports take `kept` ones only, and re-judging an eval run
# (a corrected gold, `refilter`) keeps it, so benchmark answers never become training data.
EVAL_STATUS = "eval"


def eval_run_reason(con, run_id: str) -> str | None:
    """Why `run_id` is an eval run (its kind, or traces with status 'eval'), or None.

    `con` is a DuckDB connection to the warehouse.
    """
    kind = con.execute("SELECT kind FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if kind and kind[0][0] == "eval":
        return "its recipe's kind is eval"
    # fetchall: a result left half-read blocks the run's own connection (DuckDB 2)
    [(n,)] = con.execute(
        "SELECT count(*) FROM traces WHERE run_id = ? AND status = ?", [run_id, EVAL_STATUS]
    ).fetchall()
    return f"{n} of its traces have status '{EVAL_STATUS}'" if n else None


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    >>> [round(x, 4) for x in wilson(50, 100)]
    [0.4038, 0.5962]
    >>> wilson(0, 0)
    (0.0, 1.0)
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of two models on the same problems: `b` problems only
    the first gets right, `c` only the second (a binomial test of b out of b + c at 1/2).
    Hand-written: it is one binomial sum, and scipy is not a dependency of the project.

    >>> round(mcnemar_exact(32, 27), 3), round(mcnemar_exact(57, 25), 4)
    (0.603, 0.0005)
    >>> mcnemar_exact(0, 5), mcnemar_exact(5, 0), mcnemar_exact(3, 3), mcnemar_exact(0, 0)
    (0.0625, 0.0625, 1.0, 1.0)
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def discordant_pairs(con, run_a: str, run_b: str) -> tuple[int, int]:
    """Two eval runs of one sample a problem (greedy) on the same problems: how many
    problems only `run_a` gets right, and only `run_b` (`mcnemar_exact`'s b and c).

    `con` is a DuckDB connection to the warehouse. A run with more than one trace for a
    problem has no single outcome there: a ValueError.
    """
    [(most,)] = con.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM traces "
        "WHERE run_id IN (?, ?) GROUP BY run_id, problem_id)",
        [run_a, run_b],
    ).fetchall()
    if most > 1:
        raise ValueError(f"runs {run_a}, {run_b}: a paired test needs one sample a problem")
    [(b, c)] = con.execute(
        "SELECT count(*) FILTER (WHERE a.correct AND NOT coalesce(o.correct, false)), "
        "count(*) FILTER (WHERE o.correct AND NOT coalesce(a.correct, false)) "
        "FROM traces a JOIN traces o USING (problem_id) WHERE a.run_id = ? AND o.run_id = ?",
        [run_a, run_b],
    ).fetchall()
    return int(b), int(c)


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Mean and 95% interval of per-problem scores (Wilson when they are all 0 or 1).

    >>> mean_interval([1, 0, 1, 0])[0]
    0.5
    >>> [round(x, 4) for x in mean_interval([0.5, 0.5, 0.5, 0.5])]
    [0.5, 0.5, 0.5]
    """
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 1.0
    mean = sum(values) / n
    if all(v in (0, 1) for v in values):
        return (mean, *wilson(sum(values), n, z))
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def majority_score(answers: Sequence[str | None], correct: Sequence[bool | None]) -> float:
    """maj@k of one problem from its first k samples' answer keys and verdicts.

    >>> majority_score(["3", "3", "4"], [True, True, False])
    1.0
    >>> majority_score(["3", "4", None, None], [True, False, False, False])  # a tie: half
    0.5
    >>> majority_score([None, None], [False, False])
    0.0
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    tied = [a for a, v in votes.items() if v == top]
    right = {a for a, ok in zip(answers, correct, strict=True) if a is not None and ok}
    return sum(a in right for a in tied) / len(tied)


def default_ks(samples: int) -> list[int]:
    """The k values reported for `samples` per problem: powers of two, and `samples`.

    >>> default_ks(1), default_ks(6)
    ([1], [1, 2, 4, 6])
    """
    ks = [k for k in (2**i for i in range(13)) if k < samples]
    return [*ks, samples]


def problem_scores(samples: pl.DataFrame, ks: Sequence[int]) -> pl.DataFrame:
    """Per problem: pass@1, and pass@k / maj@k for each k.

    `samples` has one row per sample: `problem_id`, `sample_index`, `answer` (a normalised
    answer key, null when there is none) and `correct`.
    """
    rows = []
    ordered = samples.sort("problem_id", "sample_index")
    for (pid,), group in ordered.group_by("problem_id", maintain_order=True):
        answers = group["answer"].to_list()
        correct = [bool(c) for c in group["correct"].to_list()]
        n, c = len(correct), sum(correct)
        row = {"problem_id": pid, "pass@1": c / n}
        for k in ks:
            if k <= n:
                row[f"pass@{k}"] = pass_at_k(n, c, k)
                row[f"maj@{k}"] = majority_score(answers[:k], correct[:k])
        rows.append(row)
    return pl.DataFrame(rows)


def eval_rows(
    samples: pl.DataFrame,
    *,
    model: str,
    benchmark: str,
    run_id: str,
    ks: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Rows of the `evals` table: every metric for all problems, each source, each difficulty.

    `samples` as for `problem_scores`, plus `source` and `difficulty` (may be null).
    """
    if samples.height == 0:
        return EVALS.conform(pl.DataFrame())
    n_samples = samples.group_by("problem_id").len()["len"].min()
    ks = list(ks) if ks else default_ks(n_samples)
    scores = (
        problem_scores(samples, ks)
        .join(
            samples.group_by("problem_id").agg(
                pl.col("source").first(), pl.col("difficulty").first()
            ),
            on="problem_id",
        )
        .sort("problem_id")
    )  # sums in one order: a re-scored run gives the same floats
    subsets = [("all", scores)]
    for column in ("source", "difficulty"):
        values = scores[column].drop_nulls().unique().sort().to_list()
        if len(values) > 1 or column == "source":
            subsets += [(f"{column}={v}", scores.filter(pl.col(column) == v)) for v in values]
    now = datetime.now(UTC)
    rows = []
    metrics = [("pass@1", 1)] + [(f"{m}@{k}", k) for k in ks for m in ("pass", "maj") if k > 1]
    for subset, frame in subsets:
        for metric, k in metrics:
            if metric not in frame.columns:
                continue
            values = frame[metric].drop_nulls().to_list()
            value, low, high = mean_interval(values)
            rows.append(
                {
                    "model": model,
                    "benchmark": benchmark,
                    "metric": metric,
                    "k": k,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "n": len(values),
                    "run_id": run_id,
                    "created_at": now,
                    "subset": subset,
                }
            )
    return EVALS.conform(pl.DataFrame(rows, schema_overrides=EVALS.polars_schema))
