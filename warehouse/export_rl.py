"""Which problems an RL export holds, and what the factory measured on each: SQL only.

One row per problem (`rl_problems`): its `question`, `gold`, `meta`, `source`, `difficulty`
(`meta.difficulty` as text), the chat a self_output run last asked it with (`stored_prompt`,
JSON, or null), and its pass rate from stored samples: `pass_rate` and `n_samples` over every
checked trace (`correct` not null) of a data run, and `pass_rates`, the same per model.

Never exported (`eval_only`): a problem any eval run sampled (a trace with status `eval`, or
a run of kind `eval`: a benchmark), and a problem the `decontam` filter found in a benchmark
(a trace whose `meta.verdicts.decontam` is `contaminated`). A problem with neither a gold
nor a checker spec (`meta.checker`) gives a reward nothing to check against and is left out
too. `--where` is SQL over the rows; `drop_solved`/`drop_unsolved` drop problems every / no
stored sample solved (pass rate 1 / 0; problems never sampled stay); `balance_difficulty`
keeps as many problems of each difficulty as the rarest one has (a fixed pick by problem id).

Not here: the prompt a row gets and the trainer's shape (`generators/rl_rows.py`: it needs
the prompt templates and checker specs of the layer above).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from reasonfactory.warehouse.errors import UserError, WarehouseError
from reasonfactory.warehouse.evals import EVAL_STATUS
from reasonfactory.warehouse.export import bound_predicate
from reasonfactory.warehouse.store import Warehouse

# Problems whose answers are benchmark material: never training data.
EVAL_ONLY = f"""
SELECT DISTINCT t.problem_id FROM traces t LEFT JOIN runs r USING (run_id)
WHERE t.status = '{EVAL_STATUS}' OR r.kind = 'eval'
   OR json_extract_string(t.meta, '$.verdicts.decontam') = 'contaminated'
"""

# Stored samples of data runs with a checked answer, per problem and model.
SAMPLES = f"""
SELECT t.problem_id, t.model, count(*) AS n, sum(t.correct::INT) AS solved
FROM traces t LEFT JOIN runs r USING (run_id)
WHERE t.correct IS NOT NULL AND t.status <> '{EVAL_STATUS}' AND coalesce(r.kind, 'data') <> 'eval'
GROUP BY ALL
"""

RL_PROBLEMS = f"""
WITH samples AS ({SAMPLES}),
rates AS (
  SELECT problem_id, sum(n) AS n_samples, sum(solved) / sum(n) AS pass_rate,
         list({{'model': model, 'pass_rate': solved / n, 'n_samples': n}} ORDER BY model)
           AS pass_rates
  FROM samples GROUP BY problem_id
),
prompts AS (
  SELECT problem_id, arg_max(json_extract(meta, '$.prompt')::VARCHAR, created_at) AS prompt
  FROM traces WHERE method = 'self_output' AND json_extract(meta, '$.prompt') IS NOT NULL
    AND status <> '{EVAL_STATUS}'
  GROUP BY problem_id
)
SELECT p.problem_id, p.source, p.question, p.gold, p.meta::VARCHAR AS meta,
       json_extract(p.meta, '$.difficulty')::VARCHAR AS difficulty,
       pr.prompt AS stored_prompt,
       coalesce(r.n_samples, 0)::BIGINT AS n_samples, r.pass_rate, r.pass_rates
FROM problems p LEFT JOIN rates r USING (problem_id) LEFT JOIN prompts pr USING (problem_id)
WHERE p.problem_id NOT IN ({EVAL_ONLY})
  AND (p.gold IS NOT NULL OR json_extract_string(p.meta, '$.checker') IS NOT NULL)
"""


@dataclass(frozen=True)
class RlSelection:
    """How an RL export picks its problems (the CLI's options)."""

    where: str | None = None
    drop_solved: bool = False
    drop_unsolved: bool = False
    balance_difficulty: bool = False

    def predicate(self) -> str:
        """The SQL condition over `rl_problems` rows.

        >>> RlSelection(drop_solved=True).predicate()
        'NOT coalesce(pass_rate = 1, false)'
        >>> RlSelection().predicate()
        'TRUE'
        """
        parts = []
        if self.where:
            parts.append(bound_predicate(self.where))
        if self.drop_solved:
            parts.append("NOT coalesce(pass_rate = 1, false)")
        if self.drop_unsolved:
            parts.append("NOT coalesce(pass_rate = 0, false)")
        return " AND ".join(parts) or "TRUE"


def rl_problems(wh: Warehouse, selection: RlSelection) -> pl.DataFrame:
    """The selected problems (see the module docstring), ordered by problem id; an empty
    selection is a `UserError` that says how many problems each step left."""
    [(total,)] = wh.con.execute("SELECT count(*) FROM problems").fetchall()
    if total == 0:
        raise UserError(f"{wh.path} holds no problems; run a recipe first, nothing exported")
    [(eligible,)] = wh.con.execute(f"SELECT count(*) FROM ({RL_PROBLEMS})").fetchall()
    if eligible == 0:
        raise UserError(
            f"none of the {total} problems can be exported for RL (each is eval-only: a "
            "benchmark or a decontamination hit, or has no gold and no checker); nothing exported"
        )
    predicate = selection.predicate()
    query = f"SELECT * FROM ({RL_PROBLEMS}) WHERE {predicate}"
    try:
        rows = wh.sql(f"{query} ORDER BY problem_id")
    except WarehouseError as exc:  # a --where naming a column that is not there, a type error
        message = str(exc).removeprefix("query failed: ").splitlines()[0]
        raise UserError(f"--where {selection.where!r}: {message}") from None
    if rows.height and selection.balance_difficulty:
        rows = balance(rows)
    if rows.height == 0:
        raise UserError(
            f"no problem matches {predicate!r} ({eligible} of {total} problems are exportable "
            "for RL before it); nothing exported"
        )
    return rows


def balance(rows: pl.DataFrame) -> pl.DataFrame:
    """As many rows per difficulty (null is a level of its own) as the rarest level has, a
    fixed pick: the first by a hash of the problem id.

    >>> r = pl.DataFrame({"problem_id": list("abcde"), "difficulty": ["1", "1", "1", "2", "2"]})
    >>> balance(r)["difficulty"].to_list()
    ['1', '1', '2', '2']
    """
    least = rows.group_by("difficulty").len()["len"].min()
    picked = (
        rows.with_columns(_k=pl.col("problem_id").hash(seed=0))
        .sort("_k")
        .with_columns(_i=pl.int_range(pl.len()).over("difficulty"))
        .filter(pl.col("_i") < least)
    )
    return picked.drop("_k", "_i").sort("problem_id")
