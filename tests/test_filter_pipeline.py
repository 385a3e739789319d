"""The pipeline over all filters: order, details, idempotency, options errors."""

from __future__ import annotations

import json

import pytest
from reasonfactory.filters.pipeline import FILTERS, apply_filters, parse_filter_spec
from reasonfactory.flows.recipe import RecipeError, parse_recipe
from trace_fixtures import CHINESE, ENGLISH, MIXED, TRUNCATED, TWO_BOXED, make_traces

ALL = [
    "format",
    "answer",
    {"vote": {"min_share": 0.0, "agree": False}},
    {"length": {"max_tokens": 4096}},
    {"language": {"lang": "en"}},
    "dedup",
]


def test_every_filter_has_an_options_model():
    from pydantic import BaseModel

    for name, entry in FILTERS.items():
        assert callable(entry.fn), name
        assert issubclass(entry.options, BaseModel), name


def test_all_filters_on_real_looking_traces():
    texts = [
        ENGLISH,
        CHINESE,
        MIXED,
        TRUNCATED,
        TWO_BOXED,
        ENGLISH.replace("{75}", "{84}"),
        ENGLISH,
    ]
    df = make_traces(texts, finish=["stop", "stop", "stop", "length", "stop", "stop", "stop"])
    out = apply_filters(df, [parse_filter_spec(f) for f in ALL])
    assert out["reject_reason"].to_list() == [
        None,
        "wrong_language",
        "language_mixed",
        "truncated",
        "format:multiple_boxed",
        "wrong_answer",
        "duplicate",
    ]
    meta = [json.loads(m) for m in out["meta"]]
    assert list(meta[0]["verdicts"]) == ["format", "answer", "vote", "length", "language", "dedup"]
    assert meta[6]["details"]["dedup"] == {
        "duplicate_of": "t000",
        "kind": "exact",
        "similarity": 1.0,
    }
    assert meta[0]["details"]["length"]["counter"].startswith("approx")
    assert out["correct"].to_list()[:2] == [True, True]
    assert out["lang"].to_list()[:3] == ["en", "zh", "en"]


def test_applying_twice_changes_nothing():
    df = make_traces(
        [ENGLISH, MIXED, ENGLISH, TRUNCATED], finish=["stop", "stop", "stop", "length"]
    )
    specs = [parse_filter_spec(f) for f in ALL]
    once = apply_filters(df, specs)
    assert once.equals(apply_filters(once, specs))


def test_recipe_names_a_bad_filter_option():
    base = {"name": "x", "problems": {"source": "builtin:arithmetic"}}
    with pytest.raises(RecipeError, match="unknown option 'max'; allowed: min_tokens, max_tokens"):
        parse_recipe({**base, "filters": [{"length": {"max": 3}}]})
    with pytest.raises(RecipeError, match="max_mixed: Input should be less than or equal to 1"):
        parse_recipe({**base, "filters": [{"language": {"max_mixed": 5}}]})
    with pytest.raises(RecipeError, match="put 'answer' before it"):
        parse_recipe({**base, "filters": [{"vote": {"pass_rate": [0.1, 0.9]}}, "answer"]})
    with pytest.raises(RecipeError, match="benchmarks"):
        parse_recipe({**base, "filters": [{"decontam": {}}]})


@pytest.mark.parametrize("order", [["answer", "format"], ["format", "answer"], ["dedup", "answer"]])
def test_truncation_and_engine_errors_do_not_depend_on_filter_order(order):
    df = make_traces(
        [ENGLISH, TRUNCATED, ENGLISH.replace("{75}", "{84}"), ""],
        finish=["stop", "length", "stop", "error"],
    )
    out = apply_filters(df, [parse_filter_spec(f) for f in order])
    assert out["reject_reason"].to_list()[:2] == [None, "truncated"]
    assert out["reject_reason"][3] == "engine_error"
    verdicts = [json.loads(m)["verdicts"] for m in out["meta"]]
    assert "generate" not in verdicts[0] and verdicts[1]["generate"] == "truncated"
    assert list(verdicts[0]) == order  # the filters' own verdicts are still all recorded
