"""Export traces as Hugging Face datasets: `hf` (save_to_disk), `parquet` or `jsonl`.

`export_sft` writes a `messages` column (the chat the model was asked, or with `prompt="raw"`
the bare question, then the assistant's
`<think>\\n...\\n</think>\\n\\n` + response) plus `problem_id`, `trace_id`, `method`, `model`,
`score`. It reads the `sft_all` view (every trace with its chat) with `status = 'kept'`, so by
default it writes exactly the `sft` view (kept traces only); a `where` predicate that itself
mentions `status` selects among all traces instead, except an eval's (`status = 'eval'`: a
benchmark's answers are never training data).
DuckDB writes the rows straight to Parquet/JSONL (streaming, never the whole set in Python);
`hf` loads that Parquet with `datasets` and saves it to disk. A dataset card (README.md)
says what is inside and how it was selected.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import EVAL_STATUS
from reasonfactory.warehouse.outdir import check_out, fresh_out, mark_out
from reasonfactory.warehouse.store import Warehouse

ExportFormat = Literal["hf", "parquet", "jsonl"]
SFT_COLUMNS = "messages, problem_id, trace_id, method, model, score"
# The user turn: what the model was asked (`meta.prompt`; the sft view's `messages`), or the
# bare question. A student trained on `as-generated` rows is sampled by `eval` with the same
# prompt it was trained on.
PROMPTS = ("as-generated", "raw")
RAW_MESSAGES = "[{'role': 'user', 'content': question}, messages[-1]] AS messages"


def selection(where: str | None) -> str:
    """The SQL predicate an export uses.

    >>> selection(None)
    "status = 'kept'"
    >>> selection("method = 'self_output'")
    "status = 'kept' AND (method = 'self_output')"
    >>> selection("status = 'rejected'")
    "status <> 'eval' AND (status = 'rejected')"
    >>> selection("response LIKE '%status%'")
    "status = 'kept' AND (response LIKE '%status%')"
    """
    if not where:
        return "status = 'kept'"
    bound = bound_predicate(where)
    unquoted = re.sub(r"'(?:[^']|'')*'", "''", where)  # a word inside a string literal is no column
    if re.search(r"\bstatus\b", unquoted, re.I):
        return f"status <> '{EVAL_STATUS}' AND {bound}"
    return f"status = 'kept' AND {bound}"


def bound_predicate(where: str) -> str:
    """`where` inside parentheses it cannot close: one expression or a `UserError`.

    Its own parentheses must balance (never closing one it did not open), and it may hold no
    `;` and no comment outside string literals, so `1=1) OR (1=1` cannot escape the
    `status = 'kept' AND (...)` around it.

    >>> bound_predicate("method = 'a)'")
    "(method = 'a)')"
    >>> bound_predicate("1=1) OR (1=1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    reasonfactory.warehouse.errors.UserError: --where '1=1) OR (1=1': a ')' at column 4 ...
    """
    depth, i, n = 0, 0, len(where)
    while i < n:
        ch = where[i]
        if ch in "'\"":
            end = where.find(ch, i + 1)
            while end != -1 and where[end + 1 : end + 2] == ch:  # '' inside a literal
                end = where.find(ch, end + 2)
            if end == -1:
                raise UserError(f"--where {where!r}: a quote at column {i + 1} is never closed")
            i = end + 1
            continue
        if ch == ";" or where.startswith(("--", "/*"), i):
            what = "a ';'" if ch == ";" else "a comment"
            raise UserError(f"--where {where!r}: {what} at column {i + 1}; give one SQL expression")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise UserError(
                    f"--where {where!r}: a ')' at column {i + 1} closes a parenthesis it did not "
                    "open; give one SQL expression"
                )
        i += 1
    if depth:
        raise UserError(f"--where {where!r}: {depth} parenthesis never closed")
    return f"({where})"


def export_sft(
    warehouse: str | Path | None,
    out: str | Path,
    *,
    where: str | None = None,
    fmt: ExportFormat = "hf",
    overwrite: bool = False,
    prompt: str = "as-generated",
) -> dict:
    """Write the SFT dataset; returns {rows, path, format, where}."""
    out = Path(out)
    check_out(out, overwrite, None)
    predicate = selection(where)
    columns = (
        SFT_COLUMNS
        if prompt == "as-generated"
        else SFT_COLUMNS.replace("messages", RAW_MESSAGES, 1)
    )
    query = f"SELECT {columns} FROM sft_all WHERE {predicate} ORDER BY problem_id, trace_id"
    with tempfile.TemporaryDirectory() as tmp, Warehouse(warehouse, read_only=True) as wh:
        wh.lock_down(writable=(out, tmp))  # `where` is SQL a user wrote: no other file
        rows = wh.sql(f"SELECT count(*) AS n FROM sft_all WHERE {predicate}")["n"][0]
        if rows == 0:
            raise UserError(f"no traces match {predicate!r}; nothing exported")
        fresh_out(out, overwrite, wh.path)
        if fmt == "jsonl":
            copy_to(wh, query, out / "data.jsonl", "FORMAT json")
            path = out / "data.jsonl"
        else:
            parquet = (out if fmt == "parquet" else Path(tmp)) / "data.parquet"
            copy_to(wh, query, parquet, "FORMAT parquet, COMPRESSION zstd")
            path = parquet
            if fmt == "hf":
                import datasets

                ds = datasets.Dataset.from_parquet(str(parquet), cache_dir=tmp)
                ds.save_to_disk(str(out))
                path = out
        summary = _card_facts(wh, predicate)
    (out / "README.md").write_text(_card(rows, fmt, predicate, summary), encoding="utf-8")
    mark_out(out, "sft", int(rows))
    return {"rows": int(rows), "path": str(path), "format": fmt, "where": predicate}


def copy_to(wh: Warehouse, query: str, path: Path, options: str) -> None:
    """`COPY (query) TO path`: an absolute path, as `Warehouse.lock_down` allows folders."""
    target = os.path.abspath(path).replace("'", "''")
    wh.con.execute(f"COPY ({query}) TO '{target}' ({options})")


def _card_facts(wh: Warehouse, predicate: str) -> list[tuple]:
    return wh.con.execute(
        f"SELECT method, model, source, count(*) FROM sft_all WHERE {predicate} "
        "GROUP BY ALL ORDER BY 4 DESC"
    ).fetchall()


def _card(rows: int, fmt: str, predicate: str, facts: list[tuple]) -> str:
    lines = "\n".join(f"| {m} | {mo} | {s} | {n} |" for m, mo, s, n in facts)
    return f"""---
tags: [reasonfactory, reasoning, sft]
---
# Reasoning traces (SFT)

{rows} conversations exported by reasonfactory ({fmt}), selected with `{predicate}`.
Each row has `messages`: the user's problem, then the assistant's
`<think>` ... `</think>` reasoning followed by the final answer in `\\boxed{{}}`.

| method | model | problem source | rows |
|---|---|---|---|
{lines}

Traces from the `sim` engine come from a simulator, not a language model: use them to test
a pipeline, not to train a model you care about.
"""
