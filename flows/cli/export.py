"""`export sft|prm|dpo|rl`: Hugging Face datasets from the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer
from reasonfactory.flows.cli.app import (
    FormatOpt,
    OutOpt,
    OverwriteOpt,
    WarehouseOpt,
    export_app,
    run_export,
)
from reasonfactory.warehouse.errors import UserError


@export_app.command("sft")
def export_sft(
    out_dir: OutOpt,
    where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over the sft view; status='kept' is added unless it "
            "mentions status."
        ),
    ] = None,
    fmt: FormatOpt = "hf",
    overwrite: OverwriteOpt = False,
    warehouse: WarehouseOpt = None,
    prompt: Annotated[
        str,
        typer.Option(
            help="as-generated: the user turn is the chat the model was asked (self_output); "
            "raw: the bare question."
        ),
    ] = "as-generated",
) -> None:
    """Export kept traces as an SFT dataset with a `messages` column.

    Example: reasonfactory export sft --out ./sft --where "method = 'self_output'"
    """
    from reasonfactory.warehouse.export import PROMPTS
    from reasonfactory.warehouse.export import export_sft as do_export

    if fmt not in ("hf", "parquet", "jsonl"):
        raise UserError(f"--format {fmt!r}: expected hf, parquet or jsonl")
    if prompt not in PROMPTS:
        raise UserError(f"--prompt {prompt!r}: expected {' or '.join(PROMPTS)}")
    run_export(do_export, "rows", warehouse, out_dir, where, fmt, overwrite, prompt=prompt)


@export_app.command("prm")
def export_prm(
    out_dir: OutOpt,
    where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over the prm rows (columns: problem_id, run_id, tree_id, "
            "leaf_id, leaf_correct, source, prompt, completions, labels, ...)."
        ),
    ] = None,
    labels: Annotated[
        str, typer.Option(help="q (MCTS value) or mc (Math-Shepherd rollout share).")
    ] = "q",
    threshold: Annotated[
        float, typer.Option(help="A step is labelled good when its value > threshold.")
    ] = 0.0,
    fmt: FormatOpt = "hf",
    overwrite: OverwriteOpt = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Export search-tree paths as process supervision: {prompt, completions, labels}.

    One row per root-to-leaf path of every stored tree (TRL <= 1.13 PRMTrainer's stepwise
    format, as in the Math-Shepherd datasets). Needs a run with `generate: {method: tree}`.

    Example: reasonfactory export prm --out ./prm --labels mc --where "leaf_correct"
    """
    from reasonfactory.warehouse.export_tree import export_prm as do_export

    run_export(
        do_export,
        "paths",
        warehouse,
        out_dir,
        where,
        fmt,
        overwrite,
        labels=labels,
        threshold=threshold,
    )


@export_app.command("dpo")
def export_dpo(
    out_dir: OutOpt,
    where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over the dpo rows (columns: problem_id, run_id, tree_id, "
            "node_id, margin, rejected_failed, similarity, weight, source, ...)."
        ),
    ] = None,
    margin: Annotated[
        float, typer.Option(help="Least Q(chosen) - Q(rejected) (rStar-Math uses 0.5).")
    ] = 0.5,
    max_similarity: Annotated[
        float,
        typer.Option(
            help="Drop pairs at least this similar (Levenshtein, 0-1) unless the rejected "
            "step failed its check."
        ),
    ] = 0.9,
    fmt: FormatOpt = "hf",
    overwrite: OverwriteOpt = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Export sibling steps as preference pairs: {prompt, chosen, rejected}.

    The prompt is the question plus the steps both share; chosen leads to a correct answer,
    rejected to a wrong one (rStar-Math's rule). TRL's DPOTrainer reads it as is. Needs a
    run with `generate: {method: tree}`.

    Example: reasonfactory export dpo --out ./dpo --where "rejected_failed"
    """
    from reasonfactory.warehouse.export_tree import export_dpo as do_export

    run_export(
        do_export,
        "pairs",
        warehouse,
        out_dir,
        where,
        fmt,
        overwrite,
        margin=margin,
        max_similarity=max_similarity,
    )


@export_app.command("rl")
def export_rl(
    out_dir: OutOpt,
    where: Annotated[
        str | None,
        typer.Option(
            help="SQL predicate over the problem rows (columns: problem_id, source, question, "
            "gold, meta, difficulty, pass_rate, n_samples)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="trl (a datasets folder for GRPOTrainer) | verl (train.parquet) | openrlhf "
            "(train.jsonl)",
        ),
    ] = "trl",
    drop_solved: Annotated[
        bool, typer.Option(help="Leave out problems every stored sample solved (pass rate 1).")
    ] = False,
    drop_unsolved: Annotated[
        bool, typer.Option(help="Leave out problems no stored sample solved (pass rate 0).")
    ] = False,
    balance_difficulty: Annotated[
        bool, typer.Option(help="As many problems of each difficulty as the rarest one has.")
    ] = False,
    prompt: Annotated[
        str,
        typer.Option(
            help="as-generated: the chat a self_output run asked (else the factory's solve "
            "or code prompt); raw: the bare question."
        ),
    ] = "as-generated",
    overwrite: OverwriteOpt = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Export problems as prompt-only RL data with what a reward needs (gold, checker, tests).

    One row per problem, with the pass rate measured on its stored samples; benchmark problems
    and decontamination hits are never exported. Reward functions: `reasonfactory.rewards`.

    Example: reasonfactory export rl --out ./rl --format verl --drop-solved
    """
    from reasonfactory.generators.rl_rows import export_rl as do_export

    run_export(
        do_export,
        "problems",
        warehouse,
        out_dir,
        where,
        fmt,
        overwrite,
        prompt=prompt,
        drop_solved=drop_solved,
        drop_unsolved=drop_unsolved,
        balance_difficulty=balance_difficulty,
    )
