"""Apply a recipe's filters in order: each trace gets `status`, `reject_reason` and, in
`meta.verdicts`, every rule's verdict (`"ok"` or its reason) for later analysis.

A trace's `reject_reason` is the first rule it failed; facts of generation come first, in
any filter order: a generator's own verdict (the `generator_reason` working column, e.g.
`no_solution` for a failed search), then a reply cut off (`truncated`) or failed
(`engine_error`), recorded as the `generate` verdict of the traces it fails.
Every trace's `meta` also records the gold it was judged by (`gold`, `gold_source`: the
problem's, a majority, a tree's answers, a confidence or best-of-n pick), so a refilter
rebuilds exactly that gold. Applying the same filters twice changes nothing. Filters are
looked up by name in `FILTERS` (one entry per filter: its function and its frozen options
model); an unknown name is an error that lists the valid ones, and so is an unknown option.

The column contract of a filter `fn(traces, options) -> verdicts`:
- it reads the trace columns it needs plus the working columns generators add (`gold`,
  `gold_source`, `finish_reason`, `think_closed`, `checker`), `question` (joined by the
  flow) and `standing` (True while a trace has passed every earlier rule: rules that pick
  among a problem's traces, such as dedup or the k shortest, pick among those standing);
- it returns one row per trace: `ok`, `reason`, and optionally `correct` (the answer
  check: later filters see it), `lang` (stored in `traces.lang`) and `detail` (a struct
  stored as `meta.details.<filter>`: token counts, the kept duplicate, the benchmark hit),
  and `by` (who decided: `rule` or `judge`, the answer filter's LLM judge), stored as
  `meta.verdicts.<filter>_by`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from pydantic import BaseModel, ValidationError
from reasonfactory.filters.answer import AnswerOptions, answer_filter
from reasonfactory.filters.decontam import DecontamOptions, decontam_filter
from reasonfactory.filters.dedup import DedupOptions, dedup_filter
from reasonfactory.filters.format import FormatOptions, format_filter
from reasonfactory.filters.language import LanguageOptions, language_filter
from reasonfactory.filters.length import LengthOptions, length_filter
from reasonfactory.filters.selected import SelectedOptions, selected_filter
from reasonfactory.filters.steps import StepsOptions, steps_filter
from reasonfactory.filters.vote import VoteOptions, vote_filter


@dataclass(frozen=True)
class FilterSpec:
    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FilterEntry:
    """A filter and its options model, registered together under one name."""

    fn: Callable[[pl.DataFrame, BaseModel], pl.DataFrame]
    options: type[BaseModel]


FILTERS: dict[str, FilterEntry] = {
    "answer": FilterEntry(answer_filter, AnswerOptions),
    "format": FilterEntry(format_filter, FormatOptions),
    "vote": FilterEntry(vote_filter, VoteOptions),
    "length": FilterEntry(length_filter, LengthOptions),
    "language": FilterEntry(language_filter, LanguageOptions),
    "dedup": FilterEntry(dedup_filter, DedupOptions),
    "decontam": FilterEntry(decontam_filter, DecontamOptions),
    "selected": FilterEntry(selected_filter, SelectedOptions),
    "steps": FilterEntry(steps_filter, StepsOptions),
}

# Rules that read `correct`, so the answer filter must come before them.
_NEEDS_CORRECT = {
    "vote": lambda o: o.pass_rate is not None,
    "length": lambda o: o.shortest_k is not None,
}


def parse_filter_spec(item) -> FilterSpec:
    """`"answer"` or `{"length": {"max_tokens": 4096}}` -> FilterSpec, options validated.

    >>> parse_filter_spec("format")
    FilterSpec(name='format', options={})
    """
    if isinstance(item, FilterSpec):
        name, options = item.name, item.options
    elif isinstance(item, str):
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
    filter_options(FilterSpec(name, options))
    return FilterSpec(name, options)


def filter_options(spec: FilterSpec) -> BaseModel:
    """The validated options model of a spec; errors name the option and the allowed ones."""
    model = FILTERS[spec.name].options
    try:
        return model.model_validate(spec.options)
    except ValidationError as exc:
        raise ValueError(
            f"filter {spec.name!r}: " + "; ".join(_explain(e, model) for e in exc.errors())
        ) from None


def _explain(err: dict, model: type[BaseModel]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or spec_name(model)
    if err["type"] == "extra_forbidden":
        return f"unknown option {key!r}; allowed: {', '.join(model.model_fields)}"
    if err["type"] == "missing":
        return f"missing option {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{key}: {msg} (got {err['input']!r})"


def spec_name(model: type[BaseModel]) -> str:
    return next((n for n, e in FILTERS.items() if e.options is model), "options")


def check_filter_order(specs: list[FilterSpec]) -> None:
    """Raise if a rule that reads `correct` comes before (or without) the answer filter."""
    seen_answer = False
    for spec in specs:
        if spec.name == "answer":
            seen_answer = True
        need = _NEEDS_CORRECT.get(spec.name)
        if need and not seen_answer and need(filter_options(spec)):
            raise ValueError(
                f"filter {spec.name!r} with these options reads the answer check: put "
                "'answer' before it in filters"
            )


def apply_filters(traces: pl.DataFrame, specs: list[FilterSpec]) -> pl.DataFrame:
    """The traces with `status`, `reject_reason`, `correct`, `lang` and `meta.verdicts`
    (plus `meta.details`) set."""
    if traces.height == 0:
        return traces.with_columns(
            status=pl.lit(None, pl.String), reject_reason=pl.lit(None, pl.String)
        )
    specs = [parse_filter_spec(s) for s in specs]
    frame = traces.with_columns(standing=pl.lit(True))
    reasons: dict[str, list] = {}
    details: dict[str, list] = {}
    deciders: dict[str, list] = {}  # filter -> who decided each verdict (rule | judge)
    generated = generation_reasons(traces)
    if generated is not None:
        # Facts of generation come first, whatever the filters' order: the generator's own
        # verdict (sos: no_solution), a reply cut off (truncated) or failed (engine_error).
        reasons["generate"] = generated.to_list()
        frame = frame.with_columns(standing=generated.is_null())
    for spec in specs:
        verdict = FILTERS[spec.name].fn(frame, filter_options(spec))
        if verdict.height != frame.height:
            raise RuntimeError(
                f"filter {spec.name} gave {verdict.height} verdicts for {frame.height} traces"
            )
        reasons[spec.name] = [
            None if ok else (r or spec.name)
            for ok, r in zip(verdict["ok"].to_list(), verdict["reason"].to_list(), strict=True)
        ]
        updates = {"standing": pl.col("standing") & pl.Series(verdict["ok"]).fill_null(False)}
        for column in ("correct", "lang"):
            if column in verdict.columns:
                updates[column] = verdict[column]
        frame = frame.with_columns(**updates)
        if "detail" in verdict.columns:
            details[spec.name] = verdict["detail"].to_list()
        if "by" in verdict.columns:
            deciders[spec.name] = verdict["by"].to_list()
    first_failed, metas = [], []
    golds = _column(traces, "gold")
    sources = _column(traces, "gold_source")
    facts = {name: _column(traces, name) for name in ("finish_reason", "think_closed")}
    for i, meta in enumerate(traces["meta"].to_list()):
        first_failed.append(next((reasons[n][i] for n in reasons if reasons[n][i]), None))
        m = json.loads(meta) if meta else {}
        if sources[i] is not None:  # the gold this trace was judged by, so refilter can too
            m["gold"], m["gold_source"] = golds[i], sources[i]
        for name, values in facts.items():  # what format judged, for a refilter to judge again
            if values[i] is not None:
                m.setdefault(name, values[i])
        m["verdicts"] = {
            name: reasons[name][i] or "ok"
            for name in reasons
            if name != "generate" or reasons[name][i]  # only a trace generation failed
        }
        for name, by in deciders.items():
            if by[i] is not None:
                m["verdicts"][f"{name}_by"] = by[i]
        d = {name: _compact(details[name][i]) for name in details}
        d = {k: v for k, v in d.items() if v}
        if d:
            m["details"] = d
        else:
            m.pop("details", None)
        metas.append(json.dumps(m, ensure_ascii=False))
    out = frame.drop("standing").with_columns(
        reject_reason=pl.Series(first_failed, dtype=pl.String),
        meta=pl.Series(metas, dtype=pl.String),
    )
    return out.with_columns(
        status=pl.when(pl.col("reject_reason").is_null())
        .then(pl.lit("kept"))
        .otherwise(pl.lit("rejected"))
    )


def _column(frame: pl.DataFrame, name: str) -> list:
    return frame[name].to_list() if name in frame.columns else [None] * frame.height


_FINISH_REASONS = {"length": "truncated", "error": "engine_error"}


def generation_reasons(traces: pl.DataFrame) -> pl.Series | None:
    """Per trace, why generation itself failed it (None: it did not), or None when no trace
    of the frame carries such a fact and the generator gives no verdicts of its own.

    >>> t = pl.DataFrame({"finish_reason": ["stop", "length", "error"]})
    >>> generation_reasons(t).to_list()
    [None, 'truncated', 'engine_error']
    >>> generation_reasons(pl.DataFrame({"finish_reason": ["stop"]})) is None
    True
    """
    own = "generator_reason" in traces.columns
    finish = (
        traces["finish_reason"].replace_strict(
            _FINISH_REASONS, default=None, return_dtype=pl.String
        )
        if "finish_reason" in traces.columns
        else pl.Series([None] * traces.height, dtype=pl.String)
    )
    if not own and finish.null_count() == traces.height:
        return None
    reason = traces["generator_reason"].fill_null(finish) if own else finish
    return reason.alias("generate")


def _compact(value):
    """A detail struct as a dict without its null fields (None when nothing is left)."""
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if v is not None} or None
