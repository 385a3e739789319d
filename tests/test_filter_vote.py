"""The vote filter: majority answer and share per problem, pass-rate band."""

from __future__ import annotations

import polars as pl
import pytest
from reasonfactory.filters.pipeline import FilterSpec, apply_filters, parse_filter_spec
from reasonfactory.filters.vote import vote_filter
from trace_fixtures import ENGLISH, make_traces


def _answers(answers: list[str], problem_ids: list[str]) -> pl.DataFrame:
    texts = [ENGLISH.replace("\\boxed{75}", f"\\boxed{{{a}}}") for a in answers]
    return make_traces(texts, problem_ids=problem_ids)


def test_majority_share_and_minority():
    df = _answers(["75", "\\dfrac{150}{2}", "75", "84"], ["p"] * 4)
    v = vote_filter(df)
    # \dfrac{150}{2} is not the same key as 75: the vote is a cheap grouping, not math
    assert v["reason"].to_list() == [None, "minority_answer", None, "minority_answer"]
    assert v["detail"][0] == {"majority": "75", "share": 0.5}


def test_no_consensus_below_min_share():
    df = _answers(["1", "2", "3", "1"], ["p"] * 4)
    assert set(vote_filter(df, {"min_share": 0.75})["reason"]) == {"no_consensus"}
    assert vote_filter(df, {"min_share": 0.5})["reason"].to_list() == [
        None,
        "minority_answer",
        "minority_answer",
        None,
    ]


def test_pass_rate_band_drops_trivial_and_hopeless_problems():
    pids = ["easy"] * 4 + ["mid"] * 4 + ["hard"] * 4
    df = _answers(["75"] * 4 + ["75", "75", "1", "2"] + ["1", "2", "3", "4"], pids)
    out = apply_filters(
        df,
        [
            FilterSpec("answer"),
            FilterSpec("vote", {"pass_rate": [0.25, 0.75], "min_share": 0, "agree": False}),
        ],
    )
    reasons = out["reject_reason"].to_list()
    assert reasons[:4] == ["too_easy"] * 4
    assert reasons[4:8] == [None, None, "wrong_answer", "wrong_answer"]
    assert reasons[8:] == ["wrong_answer"] * 4
    import json

    verdicts = [json.loads(m)["verdicts"]["vote"] for m in out["meta"]]
    assert verdicts[8:] == ["too_hard"] * 4
    assert json.loads(out["meta"][4])["details"]["vote"]["pass_rate"] == 0.5


def test_pass_rate_needs_answer_before_and_a_valid_band():
    with pytest.raises(ValueError, match="lo <= hi"):
        parse_filter_spec({"vote": {"pass_rate": [0.9, 0.1]}})
    from reasonfactory.filters.pipeline import check_filter_order

    with pytest.raises(ValueError, match="answer"):
        check_filter_order([parse_filter_spec({"vote": {"pass_rate": [0.1, 0.9]}})])
