"""The command line's part of reasoning-gym sources: `import gym:NAME` options and its
`--out` file, a curriculum recipe's rounds (`run`), and accuracy per family in `stats`."""

from __future__ import annotations

import json
from pathlib import Path

from reasonfactory.flows.cli.app import out
from reasonfactory.warehouse.errors import UserError


def gym_options(path: str, size, level, config: str | None, out_file) -> dict:
    """The gym-only import options as `load_problems` keywords; an error elsewhere."""
    given = {"--size": size, "--level": level, "--config": config, "--out": out_file}
    if not path.startswith("gym:"):
        used = [k for k, v in given.items() if v is not None]
        if used:
            raise UserError(f"{', '.join(used)}: only for gym:NAME sources")
        return {}
    try:
        parsed = json.loads(config) if config else {}
    except ValueError as exc:
        raise UserError(f"--config: not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise UserError("--config: expected a JSON object, e.g. '{\"min_terms\": 3}'")
    return {"size": size, "level": level, "config": parsed}


def write_problems(problems, path: Path) -> None:
    """One JSON line per problem: question, answer, and its meta's fields (the checker)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in problems.iter_rows(named=True):
            record = {"question": row["question"], "answer": row["gold"]}
            record |= json.loads(row["meta"] or "{}")
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_curriculum_and_report(recipe, warehouse: str, limit: int | None, print_summary) -> None:
    """A curriculum recipe's rounds, each reported as it ends (`print_summary`, run's), then
    a table of levels."""
    from reasonfactory.flows.curriculum import run_curriculum

    def report(record: dict, summary: dict) -> None:
        print_summary(summary)
        rate = record["pass_rate"]
        out.print(
            f"  curriculum round {record['round']}: level {record['level']}, pass rate "
            f"{'-' if rate is None else f'{rate:.2f}'} -> next level {record['next_level']}",
            highlight=False,
        )

    rounds = run_curriculum(recipe, warehouse, limit, report)
    out.print(f"\ncurriculum {recipe.name}: {len(rounds)} rounds")
    out.print("  round  level  pass rate  next level  run", highlight=False)
    for r in rounds:
        rate = "-" if r["pass_rate"] is None else f"{r['pass_rate']:.2f}"
        out.print(
            f"  {r['round']:>5}  {r['level']:>5}  {rate:>9}  {r['next_level']:>10}  {r['run_id']}",
            highlight=False,
        )


def print_accuracy(r) -> None:
    """`stats` text: answer accuracy per source and difficulty, for runs over several
    sources or reasoning-gym problems (`--format json` has it for every run)."""
    sources = {a["source"] for a in r.accuracy}
    if len(sources) < 2 and not any(s.startswith("gym:") for s in sources):
        return
    out.print("  accuracy by source and difficulty (checked traces):", highlight=False)
    for a in r.accuracy:
        level = "" if a["level"] is None else f" level {a['level']}"
        difficulty = "" if a["difficulty"] is None else f" {a['difficulty']}"
        out.print(
            f"    {a['source']}{level}: {a['accuracy']:.3f} of {a['checked']}{difficulty}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
