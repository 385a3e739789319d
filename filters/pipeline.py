"""Apply a recipe's filters in order: each trace gets `status`, `reject_reason` and, in
`meta.verdicts`, every rule's verdict (`"ok"` or its reason) for later analysis.

A trace's `reject_reason` is the first rule it failed; a generator's own verdict (the
`generator_reason` working column, e.g. `no_solution` for a failed search) comes first.
Applying the same filters twice changes nothing. Filters are looked up by name in `FILTERS`;
an unknown name is an error that lists the valid ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from filters.answer import answer_filter
from filters.format import format_filter
from filters.selected import selected_filter


@dataclass(frozen=True)
class FilterSpec:
    name: str
    options: dict = field(default_factory=dict)


FILTERS: dict[str, Callable[[pl.DataFrame, dict], pl.DataFrame]] = {
    "answer": answer_filter,
    "format": format_filter,
    "selected": selected_filter,
}


def parse_filter_spec(item) -> FilterSpec:
    """`"answer"` or `{"length": {"max_tokens": 4096}}` -> FilterSpec.

    >>> parse_filter_spec("format")
    FilterSpec(name='format', options={})
    """
    if isinstance(item, FilterSpec):
        return item
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        options = options or {}
        if not isinstance(options, dict):
            raise ValueError(f"filter {name!r}: options must be a mapping, got {options!r}")
    else:
        raise ValueError(f"a filter is a name or {{name: {{options}}}}, got {item!r}")
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; valid: {', '.join(FILTERS)}")
    return FilterSpec(name, options)


def apply_filters(traces: pl.DataFrame, specs: list[FilterSpec]) -> pl.DataFrame:
    """The traces with `status`, `reject_reason`, `correct` and `meta.verdicts` set."""
    if traces.height == 0:
        return traces.with_columns(
            status=pl.lit(None, pl.String), reject_reason=pl.lit(None, pl.String)
        )
    reasons: dict[str, list] = {}
    if "generator_reason" in traces.columns:
        # The generator's own verdict (sos: no_solution) is the first rule.
        reasons["generate"] = traces["generator_reason"].to_list()
    correct = traces["correct"] if "correct" in traces.columns else None
    for spec in specs:
        verdict = FILTERS[spec.name](traces, spec.options)
        if verdict.height != traces.height:
            raise RuntimeError(
                f"filter {spec.name} gave {verdict.height} verdicts for {traces.height} traces"
            )
        reasons[spec.name] = [
            None if ok else (r or spec.name)
            for ok, r in zip(verdict["ok"], verdict["reason"], strict=True)
        ]
        if "correct" in verdict.columns:
            correct = verdict["correct"]
    first_failed, metas = [], []
    for i, meta in enumerate(traces["meta"]):
        verdicts = {name: reasons[name][i] or "ok" for name in reasons}
        first_failed.append(next((reasons[n][i] for n in reasons if reasons[n][i]), None))
        m = json.loads(meta) if meta else {}
        m["verdicts"] = verdicts
        metas.append(json.dumps(m))
    out = traces.with_columns(
        reject_reason=pl.Series(first_failed, dtype=pl.String),
        meta=pl.Series(metas, dtype=pl.String),
    ).with_columns(
        status=pl.when(pl.col("reject_reason").is_null())
        .then(pl.lit("kept"))
        .otherwise(pl.lit("rejected"))
    )
    if correct is not None:
        out = out.with_columns(correct=correct)
    return out
