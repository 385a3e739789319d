"""Dedup within a problem: exact (normalised text hash) and near (MinHash LSH, datasketch).

The text of a trace is its thought and response. Exact: NFKC-free but case- and
whitespace-insensitive hash. Near: word `shingle`-grams, a `num_perm` MinHash per trace
(datasketch `MinHash`, affine32 scheme) and one `MinHashLSH` index at `threshold` Jaccard
for the frame; a candidate only counts when it belongs to the same problem.

Which trace is kept: in each problem, traces still standing (passed the earlier filters)
come first, then by `trace_id`, so the choice does not depend on row order and a run
re-filtered keeps the same one. A rejected trace is `duplicate`, and
`meta.details.dedup` names the trace it duplicates (`duplicate_of`), how (`exact` or
`near`) and the estimated Jaccard similarity.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from datasketch import MinHash, MinHashLSH
from pydantic import Field

from generators.base import StrictModel


class DedupOptions(StrictModel):
    """`dedup` filter options (all optional)."""

    near: bool = Field(True, description="also drop near-duplicates (MinHash LSH)")
    threshold: float = Field(0.85, gt=0, le=1, description="Jaccard similarity of a near-dup")
    shingle: int = Field(5, ge=1, description="words per shingle")
    num_perm: int = Field(64, ge=8, le=512, description="MinHash permutations")


def _identity(x):
    return int(x)


def shingle_hashes(texts: pl.Series, k: int) -> list[np.ndarray]:
    """Per text, the 32-bit hashes of its word k-grams (lower-cased `\\w+` words).

    Words are hashed by polars and k-grams combined with numpy, so no shingle string is
    built; a text with fewer than k words is one shingle.
    """
    words = texts.fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    lengths = words.list.len().to_numpy()
    # explode gives one null row for an empty list: keep only real words
    flat = words.list.eval(pl.element().hash(seed=0)).explode().drop_nulls().to_numpy()
    out, start = [], 0
    mult = np.uint64(0x9E3779B97F4A7C15)
    for n in lengths:
        w = flat[start : start + n]
        start += n
        if n == 0:
            out.append(np.zeros(1, dtype=np.uint32))
            continue
        span = min(k, n)
        h = np.zeros(n - span + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(span):
                h = h * mult + w[j : n - span + 1 + j]
        out.append((h >> np.uint64(32)).astype(np.uint32))
    return out


def dedup_filter(traces: pl.DataFrame, options: DedupOptions | dict | None = None):
    """Verdicts `ok`, `reason` (`duplicate`), `detail` {duplicate_of, kind, similarity}."""
    opts = DedupOptions.model_validate(options or {})
    standing = traces["standing"] if "standing" in traces.columns else pl.lit(True)
    text = pl.concat_str(
        [pl.col("thought").fill_null(""), pl.col("response").fill_null("")], separator="\n\n"
    )
    frame = (
        traces.select("trace_id", "problem_id", _text=text)
        .with_columns(
            _standing=standing,
            _hash=pl.col("_text")
            .str.to_lowercase()
            .str.replace_all(r"\s+", " ")
            .str.strip_chars()
            .hash(),
        )
        .with_row_index("_row")
        .sort("problem_id", "_standing", "trace_id", descending=[False, True, False])
    )
    keeper = pl.col("trace_id").first().over("problem_id", "_hash")
    frame = frame.with_columns(_keeper=keeper)
    dup_of = [None] * traces.height
    kind = [None] * traces.height
    similarity = [None] * traces.height
    for row, tid, keep in frame.select("_row", "trace_id", "_keeper").iter_rows():
        if tid != keep:
            dup_of[row], kind[row], similarity[row] = keep, "exact", 1.0
    if opts.near:
        unique = frame.filter(pl.col("trace_id") == pl.col("_keeper"))
        _near(unique, opts, dup_of, kind, similarity)
    reason = pl.Series([None if d is None else "duplicate" for d in dup_of], dtype=pl.String)
    return pl.DataFrame(
        {
            "ok": reason.is_null(),
            "reason": reason,
            "detail": pl.DataFrame(
                {
                    "duplicate_of": pl.Series(dup_of, dtype=pl.String),
                    "kind": pl.Series(kind, dtype=pl.String),
                    "similarity": pl.Series(similarity, dtype=pl.Float64),
                }
            ).to_struct(),
        }
    )


def _near(unique: pl.DataFrame, opts: DedupOptions, dup_of, kind, similarity) -> None:
    """Greedy in keep order: a trace LSH-close to a kept one of its problem is a duplicate."""
    hashes = shingle_hashes(unique["_text"], opts.shingle)
    lsh = MinHashLSH(threshold=opts.threshold, num_perm=opts.num_perm)
    sketches = MinHash.generator(hashes, num_perm=opts.num_perm, hashfunc=_identity)
    kept: dict[int, tuple[str, str, MinHash]] = {}
    for (row, tid, pid), sketch in zip(
        unique.select("_row", "trace_id", "problem_id").iter_rows(), sketches, strict=True
    ):
        best = None
        for other in lsh.query(sketch):
            o_tid, o_pid, o_sketch = kept[other]
            if o_pid != pid:
                continue
            sim = sketch.jaccard(o_sketch)
            if sim >= opts.threshold and (best is None or sim > best[1]):
                best = (o_tid, sim)
        if best is None:
            lsh.insert(row, sketch)
            kept[row] = (tid, pid, sketch)
        else:
            dup_of[row], kind[row], similarity[row] = best[0], "near", round(best[1], 4)
