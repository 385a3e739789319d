"""Format check: one closed `<think>` block, a non-empty thought, exactly one boxed answer;
optionally no code blocks, no overlong paragraph, no degenerate repetition.

Reads the parsed columns (`thought`, `response`, `think_closed`, `finish_reason`). A trace
cut off by the token limit is `truncated`, one the engine failed on (after its retries)
`engine_error`; a looping one is `repetition`; the rest fail as
`format:<what>` (`no_think`: the reply never opened `<think>`,
`unclosed_think`, `empty_thought`, `nested_think`, `no_boxed`,
`multiple_boxed`, `code_block`, `long_paragraph`). DeepSeek-R1 drops CoTs with code blocks
and long paragraphs; the repetition share catches the loops long generations fall into.
A code problem's trace (`checker` = `code:...`) answers with a code block, not a boxed
answer: the boxed rules skip it, and `no_code_blocks` reads only its thought.

Column expressions for everything but the repetition share (a per-trace n-gram count).
"""

from __future__ import annotations

from collections import Counter

import polars as pl
from pydantic import Field
from reasonfactory.filters.text import ngrams, normalise_words
from reasonfactory.generators.base import StrictModel

_BOXED = r"\\(?:boxed|fbox)\s*\{"


class FormatOptions(StrictModel):
    """`format` filter options (all optional; the structural rules always apply)."""

    no_code_blocks: bool = Field(False, description="reject ``` fenced code")
    max_paragraph_chars: int | None = Field(None, ge=1, description="longest paragraph")
    max_repetition: float | None = Field(
        None, gt=0, le=1, description="share of repeated word n-grams in the thought"
    )
    repetition_ngram: int = Field(8, ge=2, description="n of the repetition n-grams")


def repetition_share(text: str | None, n: int = 8) -> float:
    """Share of the text's word n-grams that repeat an earlier one (0 = no loop).

    >>> repetition_share("a b c d a b c d a b c d", 4)
    0.5555555555555556
    """
    grams = ngrams(normalise_words(text), n)
    if not grams:
        return 0.0
    return 1.0 - len(Counter(grams)) / len(grams)


def format_filter(traces: pl.DataFrame, options: FormatOptions | dict | None = None):
    """Verdicts `ok`, `reason` per trace (and `detail.repetition` when that rule is on).

    >>> df = pl.DataFrame({"thought": ["1+1=2"], "response": ["\\\\boxed{2}"],
    ...                    "think_closed": [True], "finish_reason": ["stop"]})
    >>> format_filter(df)["ok"].to_list()
    [True]
    """
    opts = FormatOptions.model_validate(options or {})
    boxed = pl.col("response").fill_null("").str.count_matches(_BOXED)
    thought = pl.col("thought").fill_null("")
    both = pl.concat_str([thought, pl.col("response").fill_null("")], separator="\n\n")
    code = (
        pl.col("checker").fill_null("").str.starts_with("code:")
        if "checker" in traces.columns
        else pl.lit(False)
    )
    rules = [
        (pl.col("finish_reason") == "error", "engine_error"),
        (pl.col("finish_reason") == "length", "truncated"),
        # A reply that never opened `<think>` is all response (generators/prompts.py).
        (~pl.col("think_closed").fill_null(False) & (thought == ""), "format:no_think"),
        (~pl.col("think_closed").fill_null(False), "format:unclosed_think"),
        (thought.str.strip_chars() == "", "format:empty_thought"),
        (thought.str.contains("</?think>"), "format:nested_think"),
        ((boxed == 0) & ~code, "format:no_boxed"),
        ((boxed > 1) & ~code, "format:multiple_boxed"),
    ]
    if opts.no_code_blocks:
        prose = pl.when(code).then(thought).otherwise(both)
        rules.append((prose.str.contains("```"), "format:code_block"))
    if opts.max_paragraph_chars is not None:
        longest = both.str.split("\n\n").list.eval(pl.element().str.len_chars()).list.max()
        rules.append((longest > opts.max_paragraph_chars, "format:long_paragraph"))
    columns = {}
    if opts.max_repetition is not None:
        shares = [repetition_share(t, opts.repetition_ngram) for t in traces["thought"]]
        columns["_repetition"] = pl.Series(shares, dtype=pl.Float64)
        rules.append((pl.col("_repetition") > opts.max_repetition, "repetition"))
    reason = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
    for cond, name in rules[1:]:
        reason = reason.when(cond).then(pl.lit(name))
    reason = reason.otherwise(pl.lit(None, dtype=pl.String))
    out = traces.with_columns(**columns).select(reason.alias("reason"))
    out = out.with_columns(ok=pl.col("reason").is_null())
    if "_repetition" in columns:
        out = out.with_columns(detail=pl.struct(repetition=columns["_repetition"].round(4)))
    return out.select("ok", "reason", *(["detail"] if "detail" in out.columns else []))
