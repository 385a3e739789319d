"""Length: thought and response length in tokens, min/max bounds, truncation, and the
overthinking rule (per problem keep only the k shortest correct traces).

Tokens are counted with the model's tokenizer when the options name one (a local folder
`transformers.AutoTokenizer` can load; nothing is downloaded), else approximated as UTF-8
bytes / 4 (about right for English BPE vocabularies, and for CJK at 3 bytes a character),
and `meta.details.length.counter` says which. `finish_reason = length` (the engine cut the
trace off) is always `truncated`. Reasons: `truncated`, `too_long`, `too_short`,
`overthinking`.

Not here: the engine's own count, which is the `n_tokens` column.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl
from pydantic import Field, model_validator
from reasonfactory.generators.base import APPROX_TOKENS, StrictModel
from reasonfactory.warehouse.errors import UserError

APPROX = APPROX_TOKENS  # "approx:utf8_bytes/4", as sos and journey count their n_tokens


class LengthOptions(StrictModel):
    """`length` filter options (all optional); bounds apply to thought + response."""

    min_tokens: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    max_thought_tokens: int | None = Field(None, ge=1)
    max_response_tokens: int | None = Field(None, ge=1)
    shortest_k: int | None = Field(
        None, ge=1, description="per problem, keep only the k shortest correct traces"
    )
    tokenizer: str | None = Field(None, description="local tokenizer folder (else approximate)")

    @model_validator(mode="after")
    def _bounds(self):
        lo, hi = self.min_tokens, self.max_tokens
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_tokens {lo} > max_tokens {hi}")
        return self


@lru_cache(maxsize=4)
def load_tokenizer(path: str):
    """A tokenizer from a local folder (cached): never a download."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UserError(
            f"length.tokenizer {path!r}: counting with a tokenizer needs transformers "
            "(pip install transformers); leave tokenizer out to approximate"
        ) from None

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"length.tokenizer {path!r}: cannot load a tokenizer there ({exc})"
        ) from None


def count_tokens(texts: pl.Series, tokenizer: str | None = None) -> tuple[pl.Series, str]:
    """Token counts of the texts, and the name of the counter used.

    >>> count_tokens(pl.Series(["abcdefgh", None]))[0].to_list()
    [2, 0]
    """
    if tokenizer is None:
        counts = ((texts.fill_null("").str.len_bytes() + 3) // 4).cast(pl.Int64)
        return counts, APPROX
    tok = load_tokenizer(tokenizer)
    ids = tok(texts.fill_null("").to_list(), add_special_tokens=False)["input_ids"]
    return pl.Series([len(i) for i in ids], dtype=pl.Int64), f"tokenizer:{tokenizer}"


def length_filter(traces: pl.DataFrame, options: LengthOptions | dict | None = None):
    """Verdicts `ok`, `reason`, and `detail` {thought_tokens, response_tokens, counter}."""
    opts = LengthOptions.model_validate(options or {})
    thought, counter = count_tokens(traces["thought"], opts.tokenizer)
    response, _ = count_tokens(traces["response"], opts.tokenizer)
    frame = traces.with_columns(_thought=thought, _response=response).with_columns(
        _total=pl.col("_thought") + pl.col("_response")
    )
    rules = [(pl.col("finish_reason") == "length", "truncated")]
    if opts.max_tokens is not None:
        rules.append((pl.col("_total") > opts.max_tokens, "too_long"))
    if opts.max_thought_tokens is not None:
        rules.append((pl.col("_thought") > opts.max_thought_tokens, "too_long"))
    if opts.max_response_tokens is not None:
        rules.append((pl.col("_response") > opts.max_response_tokens, "too_long"))
    if opts.min_tokens is not None:
        rules.append((pl.col("_total") < opts.min_tokens, "too_short"))
    reason = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
    for cond, name in rules[1:]:
        reason = reason.when(cond).then(pl.lit(name))
    frame = frame.with_columns(_reason=reason.otherwise(pl.lit(None, dtype=pl.String)))
    if opts.shortest_k is not None:
        frame = _overthinking(frame, opts.shortest_k)
    return frame.select(
        ok=pl.col("_reason").is_null(),
        reason=pl.col("_reason"),
        detail=pl.struct(
            thought_tokens=pl.col("_thought"),
            response_tokens=pl.col("_response"),
            counter=pl.lit(counter),
        ),
    )


def _overthinking(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """Among each problem's correct traces still standing (and within bounds), all but the
    k shortest are `overthinking`; ties go to the smaller trace_id."""
    standing = pl.col("standing") if "standing" in frame.columns else pl.lit(True)
    eligible = pl.col("correct").fill_null(False) & pl.col("_reason").is_null() & standing
    frame = frame.with_row_index("_row")
    longer = (
        frame.filter(eligible)
        .sort("problem_id", "_total", "trace_id")
        .filter(pl.int_range(pl.len()).over("problem_id") >= k)
        .select("_row")
    )
    over = pl.col("_row").is_in(longer["_row"].implode())
    return frame.with_columns(
        _reason=pl.when(over).then(pl.lit("overthinking")).otherwise(pl.col("_reason"))
    ).drop("_row")
