"""`export rl`: one prompt-only row per problem, in the shape an RL trainer reads.

Every row carries what a reward needs (`reasonfactory.filters.rewards` reads it): the `gold`
answer and the `checker` spec the `answer` filter would use (`countdown:...`, `gym:{...}`,
or `code:` + the tests: `verify.checkers.attach_checkers`), plus `problem_id`, `source`,
`difficulty` and the factory's measured `pass_rate`, `n_samples` and `pass_rates` (per
model) from `warehouse.export_rl`. The prompt is the chat the model is asked
(`as-generated`: the one a self_output run last stored for the problem, else
`prompts.messages_for`, the factory's solve or code prompt; `raw`: the bare question).

Shapes (`--format`):
- `trl`: a `datasets` folder (`load_from_disk`) with `prompt` as chat messages; TRL's
  `GRPOTrainer` hands every other column to reward functions as keyword arguments.
- `verl`: `train.parquet` with `data_source`, `prompt`, `ability`, `reward_model`
  {`style`: rule, `ground_truth`: gold} and `extra_info` (the rest, `checker` included).
- `openrlhf`: `train.jsonl` with `input` (chat messages: `--apply_chat_template`) and
  `label` (JSON of gold and checker): `--input_key input --label_key label`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import polars as pl
from reasonfactory.generators.prompts import messages_for
from reasonfactory.generators.verify.checkers import attach_checkers, is_code
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export_rl import RlSelection, rl_problems
from reasonfactory.warehouse.outdir import check_out, fresh_out, mark_out
from reasonfactory.warehouse.store import Warehouse

RlFormat = Literal["trl", "verl", "openrlhf"]
RL_FORMATS = ("trl", "verl", "openrlhf")
RL_PROMPTS = ("as-generated", "raw")
FILES = {"trl": ".", "verl": "train.parquet", "openrlhf": "train.jsonl"}
MESSAGES = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))


def ability(checker: str | None) -> str:
    """verl's `ability` of a problem: code, a reasoning-gym task, or math.

    >>> ability("code:{}"), ability("gym:{}"), ability("countdown:1,2"), ability(None)
    ('code', 'reasoning', 'math', 'math')
    """
    if is_code(checker):
        return "code"
    return "reasoning" if (checker or "").startswith("gym:") else "math"


def rl_rows(problems: pl.DataFrame, prompt: str = "as-generated") -> pl.DataFrame:
    """The trainer-neutral rows: `prompt` (messages), `gold`, `checker`, `problem_id`,
    `source`, `difficulty`, `ability`, `pass_rate`, `n_samples`, `pass_rates`."""
    checkers = attach_checkers(problems.select("problem_id"), problems)["checker"].to_list()
    prompts = []
    for row in problems.iter_rows(named=True):
        if prompt == "raw":
            chat = [{"role": "user", "content": row["question"]}]
        elif prompt == "as-generated" and row["stored_prompt"]:
            chat = json.loads(row["stored_prompt"])
        else:
            chat = list(messages_for(row))
        prompts.append([{"role": m["role"], "content": m["content"]} for m in chat])
    return pl.DataFrame(
        {
            "prompt": pl.Series(prompts, dtype=MESSAGES),
            "gold": problems["gold"],
            "checker": pl.Series(checkers, dtype=pl.String),
            "problem_id": problems["problem_id"],
            "source": problems["source"],
            "difficulty": problems["difficulty"],
            "ability": pl.Series([ability(c) for c in checkers], dtype=pl.String),
            "pass_rate": problems["pass_rate"].cast(pl.Float64),
            "n_samples": problems["n_samples"],
            "pass_rates": problems["pass_rates"],
        }
    )


def label_of(gold: str | None, checker: str | None) -> str:
    """OpenRLHF's `label`: what the answer check needs, as one JSON string.

    >>> label_of("24", "countdown:4,6")
    '{"gold": "24", "checker": "countdown:4,6"}'
    """
    return json.dumps({"gold": gold, "checker": checker}, ensure_ascii=False)


def shaped(rows: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """The rows in a trainer's shape (see the module docstring)."""
    if fmt == "trl":
        return rows
    extra = ["problem_id", "checker", "difficulty", "pass_rate", "n_samples", "pass_rates"]
    if fmt == "verl":
        return rows.with_row_index("index").select(
            pl.col("source").alias("data_source"),
            "prompt",
            "ability",
            pl.struct(style=pl.lit("rule"), ground_truth=pl.col("gold")).alias("reward_model"),
            pl.struct(pl.lit("train").alias("split"), pl.col("index").cast(pl.Int64), *extra).alias(
                "extra_info"
            ),
        )
    labels = [label_of(g, c) for g, c in zip(rows["gold"], rows["checker"], strict=True)]
    return rows.select(
        pl.col("prompt").alias("input"),
        pl.Series("label", labels, dtype=pl.String),
        "gold",
        "source",
        *extra,
    )


def export_rl(
    warehouse: str | Path | None,
    out: str | Path,
    *,
    where: str | None = None,
    fmt: str = "trl",
    overwrite: bool = False,
    prompt: str = "as-generated",
    drop_solved: bool = False,
    drop_unsolved: bool = False,
    balance_difficulty: bool = False,
) -> dict:
    """Write the RL dataset; returns {rows, path, format, where}.

    Example: `export_rl("wh.duckdb", "rl", fmt="verl", drop_solved=True)`.
    """
    if fmt not in RL_FORMATS:
        raise UserError(f"--format {fmt!r}: expected {', '.join(RL_FORMATS)}")
    if prompt not in RL_PROMPTS:
        raise UserError(f"--prompt {prompt!r}: expected {' or '.join(RL_PROMPTS)}")
    out = Path(out)
    check_out(out, overwrite, None)
    selection = RlSelection(where, drop_solved, drop_unsolved, balance_difficulty)
    with Warehouse(warehouse, read_only=True) as wh:
        wh.lock_down(writable=(out,))  # `where` is SQL a user wrote: no other file
        problems = rl_problems(wh, selection)
        fresh_out(out, overwrite, wh.path)
    rows = shaped(rl_rows(problems, prompt), fmt)
    path = out / FILES[fmt]
    if fmt == "trl":
        import datasets

        datasets.Dataset(rows.to_arrow()).save_to_disk(str(out))
    elif fmt == "verl":
        rows.write_parquet(path)
    else:
        rows.write_ndjson(path)
    (out / "README.md").write_text(_card(rows.height, fmt, selection), encoding="utf-8")
    mark_out(out, "rl", rows.height)
    return {"rows": rows.height, "path": str(path), "format": fmt, "where": selection.predicate()}


USAGE = {
    "trl": "`datasets.load_from_disk(DIR)` as `train_dataset` of TRL's `GRPOTrainer`, with "
    "reward functions from `reasonfactory.rewards` (`answer_reward`, `format_reward`, ...)",
    "verl": "`data.train_files=DIR/train.parquet`, "
    "`custom_reward_function.path=<reasonfactory>/filters/rewards_trainers.py` "
    "`custom_reward_function.name=compute_score`",
    "openrlhf": "`--prompt_data DIR/train.jsonl --input_key input --label_key label "
    "--apply_chat_template --remote_rm_url <reasonfactory>/filters/rewards_trainers.py`",
}


def _card(rows: int, fmt: str, selection: RlSelection) -> str:
    return f"""---
tags: [reasonfactory, reasoning, rl]
---
# Reasoning problems for RL ({fmt})

{rows} prompts exported by reasonfactory, selected with `{selection.predicate()}`.
One row per problem: the chat the model is asked, and what a reward needs (the gold answer,
or the checker spec: Countdown, reasoning-gym family, code tests), with the pass rate the
factory measured on its stored samples (`pass_rate`, `n_samples`, per model `pass_rates`).
Benchmark problems and decontamination hits are never exported.

Use: {USAGE[fmt]}.
"""
