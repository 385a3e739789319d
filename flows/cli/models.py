"""Commands that evaluate and train models: eval, train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, out
from reasonfactory.flows.cli.data import (
    AnswerFormatOpt,
    FieldsOpt,
    check_answer_format,
    parse_fields,
    print_evals,
)
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import resolve_path


@app.command("eval")
def eval_(
    recipe: Annotated[
        Path | None, typer.Argument(help="A recipe: problems (with gold) and engine.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="A model folder, run with the vllm engine (with --predictions: a name)."),
    ] = None,
    problems: Annotated[
        str | None, typer.Option(help="Problem source (builtin:..., FILE.jsonl, hf:DIR).")
    ] = None,
    answer_format: AnswerFormatOpt = "plain",
    fields: FieldsOpt = "",
    samples: Annotated[int | None, typer.Option(help="Samples per problem (default 1).")] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (default 0: greedy).")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Completion budget.")] = None,
    max_model_len: Annotated[
        int | None,
        typer.Option(help="--model: vLLM's context (default: 2048, or the model's if shorter)."),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(help="A JSONL of outputs to score: problem_id (or question), response."),
    ] = None,
    benchmark: Annotated[str | None, typer.Option(help="Name stored in evals.benchmark.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N problems.")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Evaluate a model: pass@1, pass@k and maj@k with 95% intervals, stored in `evals`.

    Either a recipe (its problems and engine; `generate` may set samples and temperature), or
    `--model DIR --problems SOURCE` for a local model run with vLLM, or
    `--predictions FILE.jsonl --problems SOURCE --model NAME` for outputs already written
    (one line per sample; scored by the same answer check and metrics).
    """
    from reasonfactory.flows.evaluate import eval_predictions, eval_recipe, run_eval
    from reasonfactory.flows.local_server import prefect_api
    from reasonfactory.flows.preflight import check_recipe, model_context
    from reasonfactory.flows.recipe import read_yaml_mapping

    check_answer_format(answer_format)
    if recipe is not None and (answer_format != "plain" or fields):
        raise UserError("--answer-format and --fields go with --problems; a recipe sets them")
    source = {"source": problems, "answer_format": answer_format}
    if fields:
        source["fields"] = parse_fields(fields)

    if predictions is not None:
        if recipe is not None or not (model and problems):
            raise UserError("eval --predictions FILE needs --problems SOURCE and --model NAME")
        if samples is not None or temperature is not None or max_tokens is not None:
            raise UserError(
                "eval --predictions: the samples are the file's lines; --samples, "
                "--temperature and --max-tokens do not apply"
            )
        path = resolve_path(warehouse).resolve()
        with prefect_api():
            rows = eval_predictions(
                predictions, source, model, path, benchmark=benchmark, limit=limit
            )
        print_evals(rows.iter_rows(named=True))
        return
    if recipe is not None:
        data = read_yaml_mapping(recipe, "recipe file")
    elif model and problems:
        data = {
            "name": Path(model).name,
            "problems": source,
            "engine": {
                "kind": "vllm",
                "model": model,
                # The model's own context when shorter than 2,048 tokens (a small model's).
                "max_model_len": max_model_len or min(2048, model_context(Path(model)) or 2048),
            },
        }
    else:
        raise UserError("eval needs a RECIPE, or --model DIR and --problems SOURCE")
    rec = eval_recipe(data, samples=samples, temperature=temperature, max_tokens=max_tokens)
    check_recipe(rec)  # in well under a second, before a server or an engine starts
    with prefect_api():
        rows = run_eval(rec, resolve_path(warehouse).resolve(), benchmark=benchmark, limit=limit)
    print_evals(rows.iter_rows(named=True))


@app.command()
def train(
    data: Annotated[
        list[Path], typer.Option("--data", help="An export folder (repeat for several).")
    ],
    base: Annotated[Path, typer.Option(help="The model folder to start from.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to save the trained model.")],
    kind: Annotated[str, typer.Option(help="sft | dpo | prm")] = "sft",
    config: Annotated[
        Path | None, typer.Option(help="A YAML of training settings (see README).")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Train with TRL (SFT on `messages`, assistant turns only; or DPO), or a PRM on `export
    prm` (a token classifier; held-out AUROC in its metrics), and record lineage."""
    from pydantic import ValidationError
    from reasonfactory.flows.local_server import prefect_api
    from reasonfactory.flows.recipe import read_yaml_mapping
    from reasonfactory.flows.train import train_and_record
    from reasonfactory.generators.train import TrainConfig

    settings = {}
    if config is not None:
        settings = read_yaml_mapping(config, "training config")
    try:
        cfg = TrainConfig.model_validate({**settings, "kind": kind})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(map(str, first["loc"]))
        raise UserError(f"{config or '--kind'}: {key}: {first['msg']}") from None
    if not (base / "config.json").exists():
        raise UserError(f"{base}: not a model folder (no config.json)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} exists and is not empty; choose another --out")
    with prefect_api():
        row = train_and_record(data, base, out_dir, cfg, resolve_path(warehouse).resolve())
    out.print(
        f"model {row['model_id']} saved to {row['path']}: {row['metrics']}",
        soft_wrap=True,
        highlight=False,
    )
