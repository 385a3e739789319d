"""Decontamination: word n-gram overlap between problems and benchmark files.

As open-r1's decontamination: both sides are normalised to words (`normalise_words`: NFKC,
lower case, punctuation and markup dropped) and a problem is contaminated when one of its
n-grams (default 8) appears in a benchmark question. A problem shorter than n words is
contaminated when it equals a benchmark question word for word (a short phrase inside a
longer question is not evidence). The hit names the benchmark (file stem), the row and the
matching n-gram.

Benchmark files are JSONL, Parquet or a `datasets` folder (read by the problem loader, so
errors name the file and line); the question field is `fields` or the first of `problem`,
`question`, `prompt` present. An index is built once per (files, their mtimes, fields, n).

The filter rejects every trace of a contaminated problem as `contaminated` (it reads the
`question` column the flow joins on); `find_contamination` is the same check over plain
questions, for a report before any generation (`reasonfactory decontam`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl
from pydantic import Field
from reasonfactory.filters.text import ngrams, normalise_words
from reasonfactory.generators.base import StrictModel

# The problem loader's file readers: one place that reads JSONL/Parquet/datasets and names
# the file and line of a bad record.
from reasonfactory.generators.problems.sources import (
    ProblemSourceError,
    locate_source,
    read_records,
)

QUESTION_FIELDS = ("problem", "question", "prompt")


class DecontamOptions(StrictModel):
    """`decontam` filter options."""

    benchmarks: tuple[str, ...] = Field(min_length=1, description="benchmark files")
    ngram: int = Field(8, ge=1, description="words per n-gram")
    fields: tuple[str, ...] | None = Field(
        None, description="question field(s) of the benchmark files (default: detect)"
    )


@dataclass(frozen=True)
class Hit:
    benchmark: str
    row: int
    ngram: str


@dataclass(frozen=True)
class BenchmarkIndex:
    ngram: int
    grams: dict[str, Hit]
    whole: dict[str, Hit]
    sizes: dict[str, int]


def load_benchmarks(
    paths: tuple[str, ...], ngram: int = 8, fields: tuple[str, ...] | None = None
) -> BenchmarkIndex:
    """The n-gram index of the benchmark files (cached while the files are unchanged)."""
    stamps = tuple(_mtime(p) for p in paths)
    return _load(tuple(paths), stamps, ngram, fields)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        raise ProblemSourceError(f"decontam benchmark {path}: no such file") from None


@lru_cache(maxsize=8)
def _load(paths, stamps, ngram, fields) -> BenchmarkIndex:
    grams: dict[str, Hit] = {}
    whole: dict[str, Hit] = {}
    sizes: dict[str, int] = {}
    for path in paths:
        p, kind = locate_source(path)
        name = p.stem if kind != "hf" else p.name
        n = 0
        for row, (where, record) in enumerate(read_records(p, kind, None)):
            text = question_of(record, where, fields)
            words = normalise_words(text)
            whole.setdefault(" ".join(words), Hit(name, row, " ".join(words)))
            for g in ngrams(words, ngram):
                grams.setdefault(g, Hit(name, row, g))
            n += 1
        sizes[name] = n
    return BenchmarkIndex(ngram, grams, whole, sizes)


def question_of(record: dict, where: str, fields: tuple[str, ...] | None) -> str:
    names = fields or QUESTION_FIELDS
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    present = ", ".join(sorted(record)) or "none"
    raise ProblemSourceError(
        f"{where}: no question field (looked for {', '.join(names)}; fields present: "
        f"{present}); name it with decontam.fields"
    )


def find_contamination(questions: list[str], index: BenchmarkIndex) -> list[Hit | None]:
    """The first benchmark hit of each question, or None.

    >>> idx = BenchmarkIndex(3, {"what is two": Hit("b", 0, "what is two")}, {}, {"b": 1})
    >>> find_contamination(["So, what is two plus two?", "Nothing here at all"], idx)[1] is None
    True
    """
    out = []
    for q in questions:
        words = normalise_words(q)
        if len(words) < index.ngram:
            out.append(index.whole.get(" ".join(words)))
            continue
        out.append(
            next((index.grams[g] for g in ngrams(words, index.ngram) if g in index.grams), None)
        )
    return out


def decontam_filter(traces: pl.DataFrame, options: DecontamOptions | dict):
    """Verdicts `ok`, `reason` (`contaminated`), `detail` {benchmark, row, ngram}."""
    opts = DecontamOptions.model_validate(options)
    if "question" not in traces.columns:
        raise ValueError("decontam reads the `question` column: the flow and refilter join it on")
    index = load_benchmarks(tuple(_resolve(p) for p in opts.benchmarks), opts.ngram, opts.fields)
    problems = traces.select("problem_id", "question").unique("problem_id", maintain_order=True)
    hits = dict(
        zip(
            problems["problem_id"],
            find_contamination(problems["question"].fill_null("").to_list(), index),
            strict=True,
        )
    )
    found = [hits[pid] for pid in traces["problem_id"]]
    reason = pl.Series([None if h is None else "contaminated" for h in found], dtype=pl.String)
    return pl.DataFrame(
        {
            "ok": reason.is_null(),
            "reason": reason,
            "detail": pl.DataFrame(
                {
                    "benchmark": pl.Series([h and h.benchmark for h in found], dtype=pl.String),
                    "row": pl.Series([h and h.row for h in found], dtype=pl.Int64),
                    "ngram": pl.Series([h and h.ngram for h in found], dtype=pl.String),
                }
            ).to_struct(),
        }
    )


def _resolve(path: str) -> str:
    return str(Path(path).expanduser())
