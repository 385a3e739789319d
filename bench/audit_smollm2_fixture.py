"""The audit of the filters on real model text: tests/fixtures/smollm2_replies.jsonl (300 replies
of SmolLM2-135M-Instruct, bench/make_smollm2_fixture.py) against tests/fixtures/smollm2_audit.jsonl
(per reply: the verdicts the filters give now, and the misfires a reader found in them by hand).

    python bench/audit_smollm2_fixture.py

Prints, from those two files and the filters as they are in this checkout (no model is run):
the replies per group; the verdicts at generation time (stored in the fixture, the filters as
they were when it was made) against the verdicts now, with the changes counted by kind (the
fixed misfires, re-measured); and the misfires left, counted by filter and kind. It stops with an
error when the audit's verdicts are not the filters' verdicts now (the audit is stale: read the
changed replies again). tests/test_smollm2_fixture.py checks the same; the note is
tests/fixtures/smollm2_audit.md.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPLIES = ROOT / "tests/fixtures/smollm2_replies.jsonl"
AUDIT = ROOT / "tests/fixtures/smollm2_audit.jsonl"
FILTERS = ("format", "answer", "steps")


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def verdicts_now(rows: list[dict]) -> list[dict]:
    """The filters' verdicts on each stored reply, read with the reply form it was asked for."""
    import polars as pl
    from reasonfactory.filters.pipeline import FilterSpec, apply_filters
    from reasonfactory.generators.prompts import parse_completion

    records = []
    for i, r in enumerate(rows):
        p = parse_completion(r["reply"], None, r["reply_form"])
        records.append(
            {
                "trace_id": str(i),
                "problem_id": r["problem_id"],
                "thought": p.thought,
                "response": p.response,
                "predicted": p.predicted,
                "think_closed": p.think_closed,
                "finish_reason": r["finish_reason"],
                "gold": r["gold"],
                "gold_source": "problem",
                "meta": "{}",
            }
        )
    out = apply_filters(pl.DataFrame(records), [FilterSpec(f) for f in FILTERS])
    return [{f: json.loads(m)["verdicts"][f] for f in FILTERS} for m in out["meta"]]


def short(v: dict) -> str:
    return "/".join(v[f] for f in FILTERS)


def kept(v: dict) -> bool:
    return all(v[f] == "ok" for f in FILTERS)


def main() -> int:
    rows, audit = load(REPLIES), load(AUDIT)
    now = verdicts_now(rows)
    groups = Counter(r["group"] for r in rows)
    print(f"== {REPLIES.relative_to(ROOT)}: {len(rows)} replies ({dict(groups)})")
    then = [{f: r["verdicts"][f] for f in FILTERS} for r in rows]
    print(
        f"  kept (format, answer, steps ok): {sum(map(kept, then))} at generation time, "
        f"{sum(map(kept, now))} now"
    )
    changed = Counter((short(a), short(b)) for a, b in zip(then, now, strict=True) if a != b)
    print(f"  verdicts changed since generation (misfires fixed): {sum(changed.values())} replies")
    for (a, b), n in changed.most_common():
        print(f"    {n:3d}  {a}  ->  {b}")
    stale = [a["i"] for a, v in zip(audit, now, strict=True) if {f: a[f] for f in FILTERS} != v]
    if stale:
        print(f"the audit is stale: replies {stale} get other verdicts now; audit them again")
        return 1
    misfires = Counter((m["filter"], m["kind"]) for a in audit for m in a["misfires"])
    hit = sum(1 for a in audit if a["misfires"])
    print(
        f"== misfires left (hand audit, {AUDIT.relative_to(ROOT)}): {hit} of {len(audit)} replies"
    )
    for (flt, kind), n in misfires.most_common():
        print(f"  {n:3d}  {flt}: {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
