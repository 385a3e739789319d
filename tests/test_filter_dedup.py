"""Dedup within a problem: exact and MinHash near-duplicates, and which trace was kept."""

from __future__ import annotations

import numpy as np
import polars as pl
from datasketch import MinHash
from reasonfactory.filters.dedup import dedup_filter, minhash_signatures, shingle_hashes
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from trace_fixtures import ENGLISH, make_traces

_STEPS = " ".join(
    f"Basket {i} holds {i + 3} apples, so the running total becomes {i * (i + 7) // 2}."
    for i in range(30)
)
LONG = ENGLISH.replace("Let me double-check", _STEPS + "\n\nLet me double-check")
NEAR = LONG.replace("matches the product", "agrees with the product")
OTHER = ENGLISH.replace("We need the total", "Counting the apples, the total we want is")


def test_exact_near_and_distinct_within_a_problem():
    df = make_traces(
        [LONG, LONG.replace("We need", "WE  NEED").replace(". ", ".\n "), NEAR, OTHER, LONG],
        problem_ids=["p", "p", "p", "p", "q"],
    )
    v = dedup_filter(df)
    details = v["detail"].to_list()
    assert v["reason"].to_list() == [None, "duplicate", "duplicate", None, None]
    assert details[1] == {"duplicate_of": "t000", "kind": "exact", "similarity": 1.0}
    assert details[2]["duplicate_of"] == "t000" and details[2]["kind"] == "near"
    assert 0.85 <= details[2]["similarity"] < 1.0
    # the same text in another problem is not a duplicate
    assert details[4]["duplicate_of"] is None


def test_exact_only():
    df = make_traces([LONG, NEAR])
    assert dedup_filter(df, {"near": False})["reason"].to_list() == [None, None]


def test_the_kept_trace_is_one_still_standing():
    # t000 fails format (truncated); its duplicate t001 is the one kept.
    df = make_traces([LONG, LONG], finish=["length", "stop"])
    out = apply_filters(df, [FilterSpec("format"), FilterSpec("dedup")])
    assert out["reject_reason"].to_list() == ["truncated", None]


def test_choice_does_not_depend_on_row_order():
    df = make_traces([LONG, NEAR, OTHER])
    a = dedup_filter(df)["detail"].to_list()
    b = dedup_filter(df.reverse())["detail"].to_list()[::-1]
    assert a == b


def test_signatures_are_datasketch_minhashes_of_the_shingles():
    texts = pl.Series([LONG, NEAR, "two words", ""])
    hashes, offsets = shingle_hashes(texts, 5)
    assert offsets.tolist()[2:] == [offsets[2], offsets[2] + 1] and len(hashes) == offsets[3] + 1
    signatures = minhash_signatures(hashes, offsets, 64)
    bounds = [*offsets.tolist(), len(hashes)]
    for i in range(len(texts)):
        direct = MinHash(num_perm=64, hashfunc=int, scheme="affine32")
        direct.update_batch(hashes[bounds[i] : bounds[i + 1]].tolist())
        assert np.array_equal(direct.hashvalues, signatures[i])
    a, b = (set(hashes[bounds[i] : bounds[i + 1]].tolist()) for i in (0, 1))
    assert len(a & b) / len(a | b) > 0.85  # the near-duplicate shares most shingles
