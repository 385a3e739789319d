"""Evaluate a model on a problem set: sample through the generate flow, score, store `evals`.

An eval is an ordinary run of a recipe (any engine, `self_output` sampling, the `answer`
filter against each problem's gold), so it resumes and reuses stored samples like any run.
A file of predictions is an engine too (`predictions`, generators/engines/predictions.py):
`eval_predictions` checks the file against the problem set, then runs the same recipe, so a
file and the served model that wrote it are parsed, checked and scored by the same code. Its
recipe has `kind: eval`: its traces are stored with `status = 'eval'`, so exports (which take
`status = 'kept'`) never train on a benchmark, and a re-judged eval run (a corrected gold)
keeps that status and is scored again. The metrics (`warehouse.evals`) go to the `evals`
table, one row per metric, k and subset, replacing that run's earlier rows.

Not here: the metrics themselves (`warehouse/evals.py`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
from reasonfactory.flows.generate import load_problems_task, run_recipe
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.flows.scoring import score_run
from reasonfactory.generators.engines.predictions import read_predictions
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import EVAL_STATUS
from reasonfactory.warehouse.ids import normalise_question
from reasonfactory.warehouse.store import Warehouse

__all__ = ["EVAL_STATUS", "eval_predictions", "eval_recipe", "run_eval"]

EVAL_PREFIX = "eval:"  # a label on eval recipes' names; `kind: eval` is what makes one


def eval_recipe(
    recipe: dict | Recipe,
    *,
    samples: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Recipe:
    """The recipe as an eval: `self_output` sampling (greedy by default), the answer filter.

    >>> r = eval_recipe({"name": "x", "problems": {"source": "builtin:arithmetic"}})
    >>> r.kind, r.name, r.generate.samples, r.generate.temperature, [f.name for f in r.filters]
    ('eval', 'eval:x', 1, 0.0, ['answer'])
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
        kind="eval",
        # The prefix is only a label (`kind` makes it an eval): stats and report show it.
        name=name if name.startswith(EVAL_PREFIX) else f"{EVAL_PREFIX}{name}",
        generate={**generate, "method": "self_output"},
        filters=["answer"],
    )
    return parse_recipe(data, "eval recipe")


def run_eval(
    recipe: Recipe, warehouse: str | Path, *, benchmark: str | None = None, limit: int | None = None
) -> pl.DataFrame:
    """Generate (or reuse) the samples, score them, store and return the `evals` rows."""
    run_recipe(recipe, str(warehouse), limit)
    with Warehouse(warehouse) as wh:
        return score_run(
            wh,
            recipe.run_id,  # never a data run's: its traces are stored with status 'eval'
            model=getattr(recipe.engine, "model", recipe.engine.kind),
            benchmark=benchmark or recipe.problems.name or recipe.problems.source,
            source=recipe.problems.source,
        )


def eval_predictions(
    predictions: str | Path,
    problems: str | dict,
    model: str,
    warehouse: str | Path,
    *,
    benchmark: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Score a file of a model's outputs on `problems` as `run_eval` scores a served model.

    Every line must name a problem of the set (`problem_id` or `question`), and every problem
    needs the same number of responses (its samples). The file is checked whole first: a bad
    line stores nothing. `problems` is a source, or a recipe's `problems` mapping.
    """
    path = Path(predictions).resolve()
    records = read_predictions(path)
    problems = problems if isinstance(problems, dict) else {"source": problems}
    data = {
        "name": model,
        "problems": problems,
        "engine": {"kind": "predictions", "model": model, "path": str(path)},
    }
    loaded = load_problems_task.fn(eval_recipe(data), limit)
    samples = _match(records, loaded, predictions, problems["source"], limit)
    data["engine"]["sources"] = sorted(set(loaded["source"].to_list()))
    recipe = eval_recipe(data, samples=samples)
    return run_eval(recipe, warehouse, benchmark=benchmark, limit=limit)


def _match(records, problems: pl.DataFrame, where: str | Path, source: str, limit) -> int:
    """The samples per problem; every line names a problem of the set, every problem has
    as many lines as the others."""
    ids = set(problems["problem_id"].to_list())
    by_question = {
        normalise_question(q): pid
        for pid, q in zip(problems["problem_id"], problems["question"], strict=True)
    }
    scope = f"{source}" + (f" (first {limit})" if limit else "")
    counts: Counter = Counter()
    first_line: dict[str, int] = {}
    for r in records:
        at = f"{where}:{r.line}"
        by_id = r.problem_id if r.problem_id in ids else None
        if r.problem_id and by_id is None:
            raise UserError(
                f"{at}: field 'problem_id': {r.problem_id!r} is not a problem of {scope}"
            )
        by_q = by_question.get(normalise_question(r.question)) if r.question else None
        if r.question and by_q is None and not by_id:
            raise UserError(
                f"{at}: field 'question': not a question of {scope}: {r.question[:80]!r}"
            )
        if by_id and by_q and by_id != by_q:
            raise UserError(
                f"{at}: field 'question' is the question of {by_q}, not of its problem_id {by_id}"
            )
        pid = by_id or by_q
        counts[pid] += 1
        first_line.setdefault(pid, r.line)
    missing = problems.filter(~pl.col("problem_id").is_in(list(counts)))
    if missing.height:
        pid, question = missing["problem_id"][0], missing["question"][0]
        raise UserError(
            f"{where}: no response for {missing.height} of the {problems.height} problems of "
            f"{scope}, e.g. {pid} ({question[:60]!r}); give each its responses, or --limit N "
            "when the file covers the first N"
        )
    sizes = Counter(counts.values())
    if len(sizes) > 1:
        usual = sizes.most_common(1)[0][0]
        odd = next(p for p, c in counts.items() if c != usual)
        raise UserError(
            f"{where}: every problem needs the same number of responses (its samples): "
            f"{odd} (first at line {first_line[odd]}) has {counts[odd]}, most have {usual}"
        )
    return next(iter(sizes))
