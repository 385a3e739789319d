"""A curriculum recipe (`problems.curriculum`, gym sources): rounds of new problems whose
difficulty follows the model's pass rate.

Round k makes `size` new problems (seed `seed * 1000 + k`) at the current level, runs them
as an ordinary run (`generate`, its own run id: `NAME-round-k`), measures the pass rate of
its checked traces (the share whose answer is right), and picks round k+1's level with
`gym.next_level`: up past the band, down below it, the same inside. Each round's run records
`meta.curriculum` (round, level, pass rate, next level). A re-run of the recipe finds every
round stored (same problems, same run ids), reads the same pass rates, so it takes the same
levels and does only what is missing.

Not here: the rule (generators/problems/gym.py) or a round's work (flows/generate.py).
"""

from __future__ import annotations

import json

from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import Recipe, parse_recipe
from reasonfactory.generators.problems.gym import families_of, next_level, top_level
from reasonfactory.warehouse.store import Warehouse


def round_recipe(recipe: Recipe, round_no: int, level: int) -> Recipe:
    """Round `round_no` (1-based) of a curriculum recipe as an ordinary recipe."""
    data = recipe.to_data()
    p = data["problems"]
    p.pop("curriculum")
    p.update(level=level, seed=recipe.problems.seed * 1000 + round_no)
    data["name"] = f"{recipe.name}-round-{round_no}"
    return parse_recipe(data, f"{recipe.name} round {round_no}")


def run_curriculum(recipe: Recipe, warehouse: str, limit: int | None = None, on_round=None):
    """Run every round; returns one record per round. `on_round(record, summary)` is called
    after each."""
    c = recipe.problems.curriculum
    p = recipe.problems
    top = max(top_level(f.name) for f in families_of(p.source, p.config, None, p.families))
    level, rounds = min(c.start, top), []
    for k in range(1, c.rounds + 1):
        summary = run_recipe(round_recipe(recipe, k, level), warehouse, limit)
        with Warehouse(warehouse) as wh:
            rate = pass_rate(wh, summary["run_id"])
            chosen = next_level(level, rate, c.band, top)
            record = {
                "curriculum": recipe.name,
                "round": k,
                "level": level,
                "pass_rate": rate,
                "next_level": chosen,
                "run_id": summary["run_id"],
            }
            wh.con.execute(
                "UPDATE runs SET meta = json_merge_patch(coalesce(meta, '{}'), ?) WHERE run_id = ?",
                [json.dumps({"curriculum": record}), summary["run_id"]],
            )
        rounds.append(record)
        if on_round is not None:
            on_round(record, summary)
        level = chosen
    return rounds


def pass_rate(wh: Warehouse, run_id: str) -> float | None:
    """The share of a run's checked traces whose answer is right (None: none checked)."""
    (rate,) = wh.con.execute(
        "SELECT avg(correct::INT) FROM traces WHERE run_id = ? AND correct IS NOT NULL",
        [run_id],
    ).fetchone()
    return rate
