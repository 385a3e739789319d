"""The `reasonfactory` command line: demo, run, import, query, export, stats, schedule.

Every command takes `--warehouse` (or $REASONFACTORY_WAREHOUSE; default
./reasonfactory.duckdb). Bad input or configuration prints one `error:` line and exits 1;
a traceback means a bug.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import flows  # noqa: F401  (sets Prefect defaults before Prefect is imported)
from warehouse.errors import UserError
from warehouse.store import ENV_VAR, resolve_path

app = typer.Typer(
    help="reasonfactory: generate, verify, filter, store and export reasoning traces.\n\n"
    "Start with `reasonfactory demo`, then `reasonfactory stats`, `reasonfactory query` and "
    "`reasonfactory export sft`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
export_app = typer.Typer(help="Export traces as Hugging Face datasets.", no_args_is_help=True)
app.add_typer(export_app, name="export")

out = Console()
err = Console(stderr=True)

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        "-w",
        envvar=ENV_VAR,
        show_default="./reasonfactory.duckdb",
        help="The DuckDB warehouse file.",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
FormatOpt = Annotated[str, typer.Option("--format", help="hf (save_to_disk) | parquet | jsonl")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")]


def _report_export(result: dict, noun: str = "rows") -> None:
    out.print(
        f"exported {result['rows']} {noun} ({result['format']}) to {result['path']} "
        f"where {result['where']}"
    )


def _run_and_report(recipe, warehouse: Path | None, limit: int | None) -> None:
    from flows.generate import run_recipe

    path = resolve_path(warehouse).resolve()
    summary = run_recipe(recipe, str(path), limit)
    _print_summary(summary)


@app.command()
def demo(
    warehouse: WarehouseOpt = None,
    limit: Annotated[int | None, typer.Option(help="Problems to generate for.")] = None,
) -> None:
    """Run the built-in demo recipe: 200 arithmetic problems, 8 samples each, sim engine.

    Takes a few seconds after Prefect starts. The `sim` engine is a simulator, not a model:
    it makes step-level mistakes at a set rate so the filters have something to catch.
    """
    from flows.recipe import DEMO_RECIPE, parse_recipe

    recipe = parse_recipe(DEMO_RECIPE, "demo recipe")
    _run_and_report(recipe, warehouse, limit)
    where = resolve_path(warehouse)
    out.print(
        "\nNext:\n"
        f"  reasonfactory stats -w {where}\n"
        f'  reasonfactory query -w {where} "SELECT status, reject_reason, count(*) FROM traces '
        'GROUP BY ALL ORDER BY 3 DESC"\n'
        f"  reasonfactory export sft -w {where} --out ./demo-sft",
        soft_wrap=True,
    )


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    warehouse: WarehouseOpt = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N problems.")] = None,
) -> None:
    """Run a recipe: load problems, generate, filter, store. Re-running resumes it.

    Example recipe:

        name: gsm8k-style\n
        problems: {source: builtin:arithmetic, limit: 100}\n
        engine: {kind: sim, error_rate: 0.2}\n
        generate: {method: self_output, samples: 8, temperature: 0.8}\n
        filters: [answer, format]
    """
    from flows.recipe import load_recipe

    _run_and_report(load_recipe(recipe), warehouse, limit)


@app.command("import")
def import_(
    path: Annotated[str, typer.Argument(help="A .jsonl or .parquet file, or a datasets folder.")],
    fields: Annotated[
        str, typer.Option(help="Field mapping: question=FIELD,answer=FIELD.")
    ] = "question=question,answer=answer",
    answer_format: Annotated[
        str, typer.Option(help="How the gold answer is written: plain | boxed | gsm8k.")
    ] = "plain",
    source: Annotated[
        str | None, typer.Option(help="Name of the problem set (default: the file's stem).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split of a DatasetDict folder.")] = None,
    limit: Annotated[int | None, typer.Option(help="Import only the first N problems.")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Load a problem set into the warehouse without generating anything.

    Example: reasonfactory import gsm8k_test.jsonl --answer-format gsm8k

    The whole file is checked first: a bad line stores nothing from the file.
    """
    from generators.problems.sources import load_problems
    from warehouse.store import Warehouse

    if answer_format not in ("plain", "boxed", "gsm8k"):
        raise UserError(f"--answer-format {answer_format!r}: expected plain, boxed or gsm8k")
    mapping = _parse_fields(fields)
    problems = load_problems(
        path, fields=mapping, answer_format=answer_format, limit=limit, split=split, name=source
    )
    with Warehouse(warehouse) as wh:
        added = wh.ingest("problems", problems)
    with_gold = problems.height - problems["gold"].null_count()
    out.print(
        f"{problems.height} problems read from {path} ({with_gold} with a gold answer), "
        f"{added} new, stored in {resolve_path(warehouse)} as source "
        f"{problems['source'][0]!r}"
    )


def _parse_fields(text: str) -> dict[str, str]:
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise UserError(f"--fields {text!r}: expected question=FIELD,answer=FIELD")
        if key not in ("question", "answer"):
            raise UserError(f"--fields: unknown key {key!r}; allowed: question, answer")
        mapping[key] = value
    return mapping


@app.command()
def query(
    sql: Annotated[
        str, typer.Argument(help="A SQL query over problems, runs, traces, nodes, sft.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    warehouse: WarehouseOpt = None,
) -> None:
    """Run a read-only SQL query against the warehouse.

    Example: reasonfactory query "SELECT reject_reason, count(*) FROM traces GROUP BY 1"
    """
    import polars as pl

    from warehouse.store import Warehouse

    if fmt not in ("table", "csv", "json"):
        raise UserError(f"--format {fmt!r}: expected table, csv or json")
    with Warehouse(warehouse, read_only=True) as wh:
        frame = wh.sql(sql)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, ensure_ascii=False) + "\n")
    else:
        with pl.Config(tbl_rows=200, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            out.print(str(frame), markup=False, highlight=False)


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
) -> None:
    """Export kept traces as an SFT dataset with a `messages` column.

    Example: reasonfactory export sft --out ./sft --where "method = 'self_output'"
    """
    from warehouse.export import export_sft as do_export

    if fmt not in ("hf", "parquet", "jsonl"):
        raise UserError(f"--format {fmt!r}: expected hf, parquet or jsonl")
    result = do_export(warehouse, out_dir, where=where, fmt=fmt, overwrite=overwrite)
    _report_export(result)


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
    from warehouse.export_tree import export_prm as do_export

    result = do_export(
        warehouse,
        out_dir,
        where=where,
        fmt=fmt,
        overwrite=overwrite,
        labels=labels,
        threshold=threshold,
    )
    _report_export(result, "paths")


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
    from warehouse.export_tree import export_dpo as do_export

    result = do_export(
        warehouse,
        out_dir,
        where=where,
        fmt=fmt,
        overwrite=overwrite,
        margin=margin,
        max_similarity=max_similarity,
    )
    _report_export(result, "pairs")


@app.command()
def stats(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """The funnel per run and method: generated -> after each filter -> kept, why rejected,
    and pass@k (unbiased estimator)."""
    from warehouse.stats import run_stats
    from warehouse.store import Warehouse

    with Warehouse(warehouse, read_only=True) as wh:
        rows = run_stats(wh, run_id)
    if not rows:
        out.print("no runs yet")
        return
    out.print(f"runs in {resolve_path(warehouse)}")
    for r in rows:
        out.print(
            f"\n[bold]{r.run_id}[/] {r.recipe_name} ({r.status}), method {r.method}, "
            f"{r.problems} problems"
        )
        steps = [f"generated {r.generated}", *(f"{n} {c}" for n, c in r.funnel), f"kept {r.kept}"]
        out.print("  funnel:   " + " -> ".join(steps), highlight=False)
        if r.rejected:
            out.print(
                "  rejected: " + ", ".join(f"{k} {v}" for k, v in r.rejected.items()),
                highlight=False,
                markup=False,
            )
        refiltered = r.meta.get("refilter") if isinstance(r.meta, dict) else None
        if refiltered:
            out.print(f"  re-filtered {refiltered['at']} (the funnel shows those filters)")
        if r.pass_at:
            out.print(
                "  coverage: " + "  ".join(f"pass@{k} {v:.3f}" for k, v in r.pass_at.items()),
                highlight=False,
            )


@app.command()
def refilter(
    run_id: Annotated[str, typer.Option("--run", help="The run whose traces to re-filter.")],
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="A recipe (or a YAML with only `filters: [...]`) whose filters to apply; "
            "default: the run's own."
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Re-apply a filter set to a run's stored traces, generating nothing.

    Every trace stays; status, reject_reason, correct, lang and meta.verdicts are rewritten,
    and the run's stored recipe then lists these filters (so `stats` shows their funnel).
    Running it twice with the same filters changes nothing.

    Example: reasonfactory refilter --run r_0cd6f202b38c5e84 --recipe strict.yaml

    where strict.yaml is e.g.

        filters: [format, answer, {length: {max_tokens: 4096}}, {language: {lang: en}}, dedup]
    """
    from flows.refilter import filters_from_file, run_refilter, stored_filters

    path = str(resolve_path(warehouse).resolve())
    specs = filters_from_file(str(recipe)) if recipe else stored_filters(path, run_id)
    s = run_refilter(run_id, path, specs)
    out.print(f"\nrun {s['run_id']} re-filtered in {s['warehouse']}")
    names = [f if isinstance(f, str) else next(iter(f)) for f in s["filters"]]
    out.print(f"  filters: {', '.join(names) or 'none'}", highlight=False)
    out.print(f"  funnel: traces {s['traces']} -> kept {s['kept']}")
    for reason, n in s["rejected"].items():
        out.print(f"    rejected {reason}: {n}", markup=False, highlight=False)
    out.print(f"  time: {s['seconds']:.1f} s")


@app.command()
def decontam(
    problems: Annotated[
        str, typer.Argument(help="A problem file (.jsonl, .parquet, datasets folder).")
    ],
    benchmark: Annotated[
        list[str],
        typer.Option("--benchmark", "-b", help="A benchmark file; repeat for several."),
    ],
    field: Annotated[
        str | None,
        typer.Option(help="Question field of the problem file (default: problem/question/prompt)."),
    ] = None,
    ngram: Annotated[int, typer.Option(help="Words per n-gram.")] = 8,
    report: Annotated[
        Path | None, typer.Option("--out", help="Write one JSON line per contaminated problem.")
    ] = None,
) -> None:
    """Report which problems of a file overlap a benchmark (word n-grams, as open-r1).

    Example: reasonfactory decontam gsm8k_test.jsonl -b math500.jsonl -b aime24.jsonl

    The same check as the `decontam` filter ({decontam: {benchmarks: [...], ngram: 8}} in a
    recipe), which rejects the traces of contaminated problems as `contaminated`.
    """
    from collections import Counter

    from filters.decontam import find_contamination, load_benchmarks, question_of
    from generators.problems.sources import locate_source, read_records

    if ngram < 1:
        raise UserError(f"--ngram {ngram}: expected a positive number of words")
    index = load_benchmarks(tuple(benchmark), ngram)
    path, kind = locate_source(problems)
    rows = [
        (where, question_of(rec, where, (field,) if field else None))
        for where, rec in read_records(path, kind, None)
    ]
    hits = find_contamination([q for _, q in rows], index)
    found = [(where, q, h) for (where, q), h in zip(rows, hits, strict=True) if h]
    by_bench = Counter(h.benchmark for _, _, h in found)
    sizes = ", ".join(f"{k} ({v} questions)" for k, v in index.sizes.items())
    out.print(f"{problems}: {len(rows)} problems against {sizes}, {ngram}-grams", soft_wrap=True)
    out.print(
        f"  contaminated: {len(found)}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in by_bench.most_common()) + ")" if found else ""),
        highlight=False,
    )
    for where, _q, h in found[:5]:
        out.print(
            f"  {where}: {h.benchmark} row {h.row}, n-gram {h.ngram!r}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        with report.open("w", encoding="utf-8") as fh:
            for where, q, h in found:
                record = {
                    "where": where,
                    "question": q,
                    "benchmark": h.benchmark,
                    "benchmark_row": h.row,
                    "ngram": h.ngram,
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.print(f"  report: {report}")


@app.command()
def schedule(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    cron: Annotated[str, typer.Option(help='Cron expression, e.g. "0 * * * *" (hourly).')],
    name: Annotated[
        str | None, typer.Option(help="Deployment name (default: recipe name).")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Serve the generate flow as a Prefect deployment on a cron schedule (runs until stopped).

    Cron runs need a Prefect server (its scheduler creates them): start one with
    `prefect server start` and point PREFECT_API_URL at it, e.g.
    PREFECT_API_URL=http://127.0.0.1:4200/api reasonfactory schedule r.yaml --cron "0 * * * *"
    """
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError(
            "schedule needs a Prefect server: Prefect's temporary server has no scheduler, so "
            "cron runs would never start. Run `prefect server start` in another terminal and "
            "set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from flows.generate import generate
    from flows.recipe import load_recipe

    rec = load_recipe(recipe)
    path = str(resolve_path(warehouse).resolve())
    err.print(f"serving recipe {rec.name!r} on cron {cron!r}, warehouse {path}; Ctrl-C stops")
    generate.serve(
        name=name or rec.name,
        cron=cron,
        parameters={"recipe": rec.to_data(), "warehouse": path, "limit": None},
    )


def _print_summary(s: dict) -> None:
    out.print(f"\nrun {s['run_id']} stored in {s['warehouse']}")
    out.print(
        f"  problems: {s['problems']} ({s['problems_generated']} generated this time, the rest "
        "were already done)"
    )
    out.print(f"  funnel: generated {s['generated']} -> kept {s['kept']}")
    for reason, n in s["rejected"].items():
        out.print(f"    rejected {reason}: {n}")
    rate = s["generated"] / s["seconds"] if s["seconds"] else 0.0
    out.print(
        f"  time: {s['seconds']:.1f} s ({rate:.0f} traces/s), engine {s['engine_seconds']:.1f} s "
        f"in {s['engine_calls']} calls"
    )


def main() -> None:
    try:
        app()
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
