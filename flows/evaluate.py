"""Evaluate a model on a problem set: sample through the generate flow, score, store `evals`.

An eval is an ordinary run of a recipe (any engine, `self_output` sampling, the `answer`
filter against each problem's gold), so it resumes and reuses stored samples like any run,
and a file of predictions served by the `openai` engine is scored by the same code as a
model run by `vllm`. Its traces are stored with `status = 'eval'`: exports (which take
`status = 'kept'`) never train on a benchmark. The metrics (`warehouse.evals`) go to the
`evals` table, one row per metric, k and subset, replacing that run's earlier rows.

Not here: the metrics themselves (`warehouse/evals.py`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.generators.verify.answers import answer_key
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import eval_rows
from reasonfactory.warehouse.store import Warehouse

EVAL_STATUS = "eval"


def eval_recipe(
    recipe: dict | Recipe,
    *,
    samples: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Recipe:
    """The recipe as an eval: `self_output` sampling (greedy by default), the answer filter.

    >>> r = eval_recipe({"name": "x", "problems": {"source": "builtin:arithmetic"}})
    >>> r.name, r.generate.samples, r.generate.temperature, [f.name for f in r.filters]
    ('eval:x', 1, 0.0, ['answer'])
    """
    data = recipe.to_data() if isinstance(recipe, Recipe) else dict(recipe)
    generate = dict(data.get("generate") or {})
    if generate.get("method", "self_output") != "self_output":
        raise UserError(
            f"eval samples with method self_output; the recipe asks for {generate['method']!r}"
        )
    generate.setdefault("samples", 1)
    generate.setdefault("temperature", 0.0)
    for key, value in (("samples", samples), ("temperature", temperature)):
        if value is not None:
            generate[key] = value
    if max_tokens is not None:
        generate["max_tokens"] = max_tokens
    name = str(data.get("name", "eval"))
    data.update(
        name=name if name.startswith("eval:") else f"eval:{name}",
        generate={**generate, "method": "self_output"},
        filters=["answer"],
    )
    return parse_recipe(data, "eval recipe")


def run_eval(
    recipe: Recipe, warehouse: str | Path, *, benchmark: str | None = None, limit: int | None = None
) -> pl.DataFrame:
    """Generate (or reuse) the samples, score them, store and return the `evals` rows."""
    summary = run_recipe(recipe, str(warehouse), limit)
    run_id = summary["run_id"]
    with Warehouse(warehouse) as wh:
        wh.con.execute(
            "UPDATE traces SET status = ?, reject_reason = NULL WHERE run_id = ?",
            [EVAL_STATUS, run_id],
        )
        samples = wh.sql(
            "SELECT t.problem_id, (t.meta->>'sample_index')::BIGINT AS sample_index, "
            "t.predicted, coalesce(t.correct, false) AS correct, p.source, p.gold, "
            "p.meta->>'difficulty' AS difficulty "
            "FROM traces t JOIN problems p USING (problem_id) WHERE t.run_id = ?",
            [run_id],
        )
        no_gold = samples.filter(pl.col("gold").is_null())
        if no_gold.height:
            raise UserError(
                f"eval needs a gold answer for every problem; {no_gold['problem_id'].n_unique()} "
                f"problems of {recipe.problems.source!r} have none"
            )
        samples = samples.with_columns(
            answer=pl.Series([answer_key(p) for p in samples["predicted"]], dtype=pl.String)
        )
        rows = eval_rows(
            samples,
            model=getattr(recipe.engine, "model", recipe.engine.kind),
            benchmark=benchmark or recipe.problems.name or recipe.problems.source,
            run_id=run_id,
        )
        wh.ingest_all({"evals": rows}, replace={"evals": ("run_id",)})
    return rows
