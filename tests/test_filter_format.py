"""The format filter's rules on real-looking traces: structure, code, paragraphs, loops."""

from __future__ import annotations

import pytest
from reasonfactory.filters.format import FormatOptions, format_filter, repetition_share
from reasonfactory.filters.pipeline import parse_filter_spec
from trace_fixtures import ENGLISH, TRUNCATED, TWO_BOXED, make_traces


def _reasons(texts, finish=None, **options):
    return format_filter(make_traces(texts, finish=finish), options)["reason"].to_list()


def test_two_boxed_answers_and_truncation():
    assert _reasons([ENGLISH, TWO_BOXED]) == [None, "format:multiple_boxed"]
    assert _reasons([TRUNCATED], finish=["length"]) == ["truncated"]
    # cut off without the engine saying so: still no closed think block
    assert _reasons([TRUNCATED]) == ["format:unclosed_think"]


def test_code_blocks_only_when_asked():
    code = ENGLISH.replace(
        "Then the children", "```python\nprint(12 * 7)\n```\n\nThen the children"
    )
    assert _reasons([code]) == [None]
    assert _reasons([code], no_code_blocks=True) == ["format:code_block"]


def test_long_paragraph():
    assert _reasons([ENGLISH], max_paragraph_chars=1000) == [None]
    assert _reasons([ENGLISH], max_paragraph_chars=100) == ["format:long_paragraph"]


def test_degenerate_repetition():
    loop = ENGLISH.replace(
        "Let me double-check", "Wait, let me recompute the product of twelve and seven. " * 30
    )
    v = format_filter(make_traces([ENGLISH, loop]), {"max_repetition": 0.3})
    assert v["reason"].to_list() == [None, "repetition"]
    shares = [d["repetition"] for d in v["detail"]]
    assert shares[0] < 0.05 < 0.3 < shares[1]


def test_repetition_share_counts_repeated_ngrams():
    assert repetition_share("one two three four five", 2) == 0.0
    assert repetition_share("a b a b a b", 2) == pytest.approx(1 - 2 / 5)


def test_unknown_option_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown option 'max_para'; allowed: no_code_blocks"):
        parse_filter_spec({"format": {"max_para": 10}})
    assert FormatOptions().max_repetition is None
