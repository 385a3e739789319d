"""The length filter: token bounds, truncation, the k shortest correct traces."""

from __future__ import annotations

import polars as pl
import pytest
from reasonfactory.filters.length import APPROX, LengthOptions, count_tokens, length_filter
from reasonfactory.filters.pipeline import FilterSpec, apply_filters, parse_filter_spec
from reasonfactory.warehouse.errors import UserError
from trace_fixtures import ENGLISH, TRUNCATED, make_traces


def test_truncated_mid_thought_is_always_rejected():
    df = make_traces([ENGLISH, TRUNCATED], finish=["stop", "length"])
    v = length_filter(df)
    assert v["reason"].to_list() == [None, "truncated"]


def test_bounds_on_thought_plus_response_with_the_approximation_named():
    df = make_traces([ENGLISH, "<think>\nshort\n</think>\n\n\\boxed{75}"])
    v = length_filter(df, {"min_tokens": 20, "max_tokens": 120})
    detail = v["detail"].to_list()
    assert v["reason"].to_list() == [None, "too_short"]
    assert detail[0]["counter"] == APPROX
    total = detail[0]["thought_tokens"] + detail[0]["response_tokens"]
    assert total == pytest.approx(len(ENGLISH.encode()) / 4, rel=0.1)
    assert length_filter(df, {"max_tokens": 50})["reason"].to_list() == ["too_long", None]


def test_k_shortest_correct_traces_per_problem():
    steps = [
        ENGLISH.replace("Let me double-check", "Hmm. " * n + "Let me double-check")
        for n in range(4)
    ]
    df = make_traces(steps + steps[:2], problem_ids=["a"] * 4 + ["b"] * 2).with_columns(
        correct=pl.Series([True, True, False, True, True, True])
    )
    v = length_filter(df, {"shortest_k": 1})
    # problem a: t000 is the shortest correct; t002 is wrong (not this rule's business)
    assert v["reason"].to_list() == [
        None,
        "overthinking",
        None,
        "overthinking",
        None,
        "overthinking",
    ]


def test_shortest_k_picks_among_traces_still_standing():
    steps = [
        ENGLISH.replace("Let me double-check", "Hmm. " * n + "Let me double-check")
        for n in range(3)
    ]
    df = make_traces(steps, finish=["length", "stop", "stop"]).with_columns(
        correct=pl.Series([True, True, True])
    )
    out = apply_filters(df, [FilterSpec("format"), FilterSpec("length", {"shortest_k": 1})])
    assert out["reject_reason"].to_list() == ["truncated", None, "overthinking"]


def test_shortest_k_needs_the_answer_check_first():
    from reasonfactory.filters.pipeline import check_filter_order

    with pytest.raises(ValueError, match="put 'answer' before it"):
        check_filter_order([parse_filter_spec({"length": {"shortest_k": 2}})])
    check_filter_order(
        [parse_filter_spec("answer"), parse_filter_spec({"length": {"shortest_k": 2}})]
    )


def test_min_above_max_is_rejected():
    with pytest.raises(ValueError, match="min_tokens 10 > max_tokens 5"):
        LengthOptions(min_tokens=10, max_tokens=5)


def test_counts_with_a_local_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([ENGLISH] * 3, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path)
    counts, counter = count_tokens(pl.Series(["We need the total", "apples apples"]), str(tmp_path))
    assert counts.to_list() == [4, 2] and counter == f"tokenizer:{tmp_path}"
    v = length_filter(make_traces([ENGLISH]), {"tokenizer": str(tmp_path), "max_tokens": 10})
    assert v["reason"].to_list() == ["too_long"]
    assert v["detail"][0]["counter"].startswith("tokenizer:")


def test_missing_tokenizer_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="cannot load a tokenizer there"):
        length_filter(make_traces([ENGLISH]), {"tokenizer": str(tmp_path / "nope")})
