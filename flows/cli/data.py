"""Commands over stored data and problem files: import, query, stats, decontam."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, check_limit, err, out
from reasonfactory.flows.progress import spinner
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import resolve_path

FieldsOpt = Annotated[str, typer.Option(help="Field mapping: question=FIELD,answer=FIELD.")]
AnswerFormatOpt = Annotated[
    str, typer.Option(help="How the gold answer is written: plain | boxed | gsm8k.")
]


def check_answer_format(answer_format: str) -> None:
    if answer_format not in ("plain", "boxed", "gsm8k"):
        raise UserError(f"--answer-format {answer_format!r}: expected plain, boxed or gsm8k")


@app.command("import")
def import_(
    path: Annotated[
        str,
        typer.Argument(help="A .jsonl or .parquet file, a datasets folder, or gym:NAME."),
    ],
    fields: FieldsOpt = "question=question,answer=answer",
    answer_format: AnswerFormatOpt = "plain",
    source: Annotated[
        str | None, typer.Option(help="Name of the problem set (default: the file's stem).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split of a DatasetDict folder.")] = None,
    limit: Annotated[int | None, typer.Option(help="Import only the first N problems.")] = None,
    kind: Annotated[
        str, typer.Option(help="auto (by each record's fields) | code | math.")
    ] = "auto",
    warehouse: WarehouseOpt = None,
    size: Annotated[int | None, typer.Option(help="gym: problems to make.")] = None,
    seed: Annotated[int, typer.Option(help="gym: the generator's seed.")] = 0,
    level: Annotated[int | None, typer.Option(help="gym: the curriculum level.")] = None,
    config: Annotated[str | None, typer.Option(help="gym: the family's config, JSON.")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="gym: write a JSONL file instead of storing.")
    ] = None,
) -> None:
    """Load a problem set into the warehouse without generating anything.

    Example: reasonfactory import gsm8k_test.jsonl --answer-format gsm8k

    Code problems (HumanEval, MBPP, APPS/TACO, LiveCodeBench, or `question` + `tests`) are
    recognised by their fields (`--kind code` insists); their tests are stored with them.
    The whole file is checked first: a bad line stores nothing from the file. A gym:NAME
    source makes problems with reasoning-gym (`--size`, `--seed`, `--level`, `--config`);
    `--out FILE.jsonl` writes them (question, answer, checker, difficulty) for inspection,
    and that file imported back is checked the same way.
    """
    from reasonfactory.flows.cli.gym import gym_options, write_problems
    from reasonfactory.generators.problems.sources import load_problems
    from reasonfactory.warehouse.store import Warehouse

    check_limit(limit)
    check_answer_format(answer_format)
    if kind not in ("auto", "code", "math"):
        raise UserError(f"--kind {kind!r}: expected auto, code or math")
    mapping = parse_fields(fields)
    gym = gym_options(path, size, level, config, out_file)
    with spinner(err, f"import {path}"):
        problems = load_problems(
            path,
            fields=mapping,
            answer_format=answer_format,
            limit=limit,
            split=split,
            name=source,
            seed=seed,
            **gym,
            kind=kind,
        )
        if out_file is not None:
            write_problems(problems, out_file)
            out.print(f"{problems.height} problems of {path} written to {out_file}")
            return
        with Warehouse(warehouse) as wh:
            changed, runs = wh.update_golds(problems)
            added = wh.ingest("problems", problems)
    with_gold = problems.height - problems["gold"].null_count()
    out.print(
        f"{problems.height} problems read from {path} ({with_gold} with a gold answer), "
        f"{added} new, stored in {resolve_path(warehouse)} as source "
        f"{problems['source'][0]!r}"
    )
    shapes = _code_shapes(problems)
    if shapes:
        out.print(f"  code problems, read as: {shapes} (their tests are in meta.code)")
    if changed.height:
        out.print(f"  gold answer changed for {changed.height} stored problems, e.g.:")
        for pid, old, new in changed.head(3).iter_rows():
            out.print(f"    {pid}: {old!r} -> {new!r}", highlight=False)
        for run in runs:
            out.print(f"  re-check their traces: reasonfactory refilter --run {run}")


def _code_shapes(problems) -> str:
    """`humaneval 164` for the code problems of a frame, by the shape they were read in."""
    import polars as pl

    meta = pl.col("meta")
    found = problems.filter(meta.str.json_path_match("$.checker") == "code").select(
        meta.str.json_path_match("$.format").alias("shape")
    )
    counts = found.group_by("shape").len().sort("shape").iter_rows()
    return ", ".join(f"{shape} {n}" for shape, n in counts)


def parse_fields(text: str) -> dict[str, str]:
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
    """Run a read-only SQL query against the warehouse (no file or network access).

    Example: reasonfactory query "SELECT reject_reason, count(*) FROM traces GROUP BY 1"
    """
    from reasonfactory.warehouse.store import Warehouse

    if fmt not in ("table", "csv", "json"):
        raise UserError(f"--format {fmt!r}: expected table, csv or json")
    if not sql.strip():
        raise UserError('query: empty SQL; e.g. reasonfactory query "SELECT count(*) FROM traces"')
    with Warehouse(warehouse, read_only=True) as wh:
        frame = wh.user_query(sql)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, ensure_ascii=False) + "\n")
    else:
        out.print(fit_table(frame), markup=False, highlight=False, soft_wrap=True)
        if frame.height > TABLE_ROWS:
            out.print(f"({TABLE_ROWS} of {frame.height} rows shown; --format csv or json for all)")


TABLE_ROWS = 200


def fit_table(frame, width: int | None = None) -> str:
    """The frame as a text table no wider than `width` (default: the terminal's): long cells
    are cut with an ellipsis (widest columns first), line breaks show as ⏎, and columns that
    cannot get 3 characters are left out and named below.

    >>> import polars as pl
    >>> print(fit_table(pl.DataFrame({"a": [1], "text": ["x" * 50]}), width=20))
    a     │ text
    int64 │ str
    ──────┼─────────────
    1     │ xxxxxxxxxxx…
    """
    from rich.cells import cell_len, set_cell_size

    width = width or out.width
    names = frame.columns
    types = [str(t).lower().replace("string", "str") for t in frame.dtypes]
    rows = [
        ["null" if v is None else str(v).replace("\n", "⏎") for v in row]
        for row in frame.head(TABLE_ROWS).iter_rows()
    ]
    natural = [
        max(cell_len(names[i]), cell_len(types[i]), *(cell_len(r[i]) for r in rows))
        for i in range(len(names))
    ]
    shown = len(names)
    while shown > 1 and 6 * shown - 3 > width:  # 3 characters and a 3-character separator
        shown -= 1
    widths = _water_fill(natural[:shown], max(width - 3 * (shown - 1), shown))

    def line(cells: list[str]) -> str:
        parts = []
        for text, w in zip(cells, widths, strict=False):
            cut = text if cell_len(text) <= w else set_cell_size(text, w - 1) + "…"
            parts.append(set_cell_size(cut, w))
        return " │ ".join(parts).rstrip()

    lines = [line(names), line(types), "─┼─".join("─" * w for w in widths)]
    lines += [line(r) for r in rows]
    if shown < len(names):
        note = f"({len(names) - shown} more columns: {', '.join(names[shown:])})"
        lines.append(note if cell_len(note) <= width else set_cell_size(note, width - 1) + "…")
    return "\n".join(lines)


def _water_fill(natural: list[int], room: int) -> list[int]:
    """Column widths summing to at most `room`: narrow columns keep their width, the widest
    share the rest equally (at least 3 each).

    >>> _water_fill([4, 50, 30], 40)
    [4, 18, 18]
    """
    if sum(natural) <= room:
        return natural
    cap = max(3, room // len(natural))
    while cap < max(natural) and sum(min(w, cap + 1) for w in natural) <= room:
        cap += 1
    return [min(w, cap) for w in natural]


@app.command()
def stats(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    warehouse: WarehouseOpt = None,
) -> None:
    """Per run and method: problems attempted and solved, the funnel (generated -> each
    filter -> kept), why rejected, tokens and cost (with `engine: {price_in, price_out}`),
    pass@k (unbiased estimator) and maj@k; for an `eval` run, its metrics with 95% intervals
    (all subsets in --format json, under "evals")."""
    from reasonfactory.warehouse.stats import run_stats
    from reasonfactory.warehouse.store import Warehouse

    if fmt not in ("text", "json"):
        raise UserError(f"--format {fmt!r}: expected text or json")
    with Warehouse(warehouse, read_only=True) as wh:
        rows = run_stats(wh, run_id)
    if fmt == "json":
        sys.stdout.write(json.dumps([r.to_dict() for r in rows], ensure_ascii=False) + "\n")
        return
    if not rows:
        out.print("no runs yet")
        return
    out.print(f"runs in {resolve_path(warehouse)}")
    for r in rows:
        _print_stats(r)


def _print_stats(r) -> None:
    out.print(
        f"\n[bold]{r.run_id}[/] {r.recipe_name} ({r.status}), method {r.method}", highlight=False
    )
    if r.method == "-":
        return
    if r.evals:
        _print_evals(r)
        return
    share = f" ({r.solved / r.attempted:.1%})" if r.attempted else ""
    out.print(
        f"  problems: {r.attempted} attempted, {r.solved} solved{share}, "
        f"{r.attempted - r.solved} with nothing kept",
        highlight=False,
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
    if r.tokens_in is not None or r.tokens_out:
        tokens = (
            f"  tokens:   in {r.tokens_in if r.tokens_in is not None else '?'}, out {r.tokens_out}"
        )
        if r.cost is not None:
            tokens += f", cost ${r.cost:.4f}"
        out.print(tokens, highlight=False)
    if r.pass_at:
        coverage = "  ".join(f"pass@{k} {v:.3f}" for k, v in r.pass_at.items())
        out.print("  coverage: " + coverage, highlight=False)
    if r.maj_at:
        out.print("  majority: " + "  ".join(f"maj@{k} {v:.3f}" for k, v in r.maj_at.items()))
    from reasonfactory.flows.cli.gym import print_accuracy

    print_accuracy(r)
    if r.judge:
        from reasonfactory.warehouse.judge_stats import judge_line

        out.print("  judge:    " + judge_line(r.judge), highlight=False)


def _print_evals(r) -> None:
    """An eval run: what it scored, and its metrics over all problems (subsets: json)."""
    out.print(
        f"  eval:     {r.generated} samples of {r.attempted} problems, stored with status "
        "'eval' (never exported)",
        highlight=False,
        soft_wrap=True,
    )
    for model in dict.fromkeys(e["model"] for e in r.evals):
        rows = [e for e in r.evals if e["model"] == model]
        whole = [e for e in rows if e["subset"] == "all"]
        more = len(rows) - len(whole)
        note = f" ({more} more rows per source/difficulty: --format json)" if more else ""
        out.print(f"  evals of {model}{note}:", highlight=False, markup=False)
        print_evals(whole, indent="    ")


def print_evals(rows, indent: str = "") -> None:
    """One line per `evals` row: benchmark, subset, metric, value [95% interval], n."""
    for r in rows:
        out.print(
            f"{indent}{r['benchmark']:<24} {r['subset']:<22} {r['metric']:<8} "
            f"{100 * r['value']:5.1f}% [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]  "
            f"n={r['n']}",
            soft_wrap=True,
            highlight=False,
        )


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

    from reasonfactory.filters.decontam import find_contamination, load_benchmarks, question_of
    from reasonfactory.generators.problems.sources import locate_source, read_records

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
