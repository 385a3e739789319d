"""The filters on real model text: 300 SmolLM2-135M-Instruct replies
(tests/fixtures/smollm2_replies.jsonl, made once by bench/make_smollm2_fixture.py) and their
hand audit (tests/fixtures/smollm2_audit.jsonl, the note in tests/fixtures/smollm2_audit.md).

A change to a filter that changes any verdict on this text fails here until the changed replies
are read again and the audit says whether the new verdict is right (bench/audit_smollm2_fixture.py
prints the changes).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("audit", ROOT / "bench/audit_smollm2_fixture.py")
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

ROWS = audit.load(audit.REPLIES)
AUDIT = audit.load(audit.AUDIT)


def test_the_fixture_is_300_real_replies_across_the_groups_the_issue_names():
    assert len(ROWS) >= 300 and len(AUDIT) == len(ROWS)
    groups = Counter(r["group"] for r in ROWS)
    assert {"arithmetic", "linear", "gsm8k"} <= set(groups)
    assert all(r["reply"].strip() and r["gold"] for r in ROWS)
    assert [a["problem_id"] for a in AUDIT] == [r["problem_id"] for r in ROWS]


def test_the_audit_judges_the_verdicts_the_filters_give_now():
    now = audit.verdicts_now(ROWS)
    stale = [
        (a["i"], {f: a[f] for f in audit.FILTERS}, v)
        for a, v in zip(AUDIT, now, strict=True)
        if {f: a[f] for f in audit.FILTERS} != v
    ]
    assert not stale, f"verdicts changed on audited replies, read them again: {stale[:5]}"
    # the replies kept now (the answer right, every claim read true): 3 of 300
    assert sum(map(audit.kept, now)) == 3


def test_every_misfire_names_its_filter_and_kind():
    misfires = [m for a in AUDIT for m in a["misfires"]]
    assert misfires, "an audit that finds nothing was not done"
    for m in misfires:
        assert m["filter"] in audit.FILTERS and m["kind"].strip()
