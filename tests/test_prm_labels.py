"""PRM labels from stored trees: a step's own verdict wins, a NULL Q is never read as bad.

A hand-built tree in a real DuckDB warehouse, exported through `export prm` (jsonl):
- step A's `equations` check passed, but both its children failed their checks, so the
  search never backed a value into it (`q_value` NULL): it is labelled good, its children bad;
- step C has no verdict (nothing checkable) and a NULL Q: no label can be given, so the row
  through it is left out rather than labelled bad;
- step E has no verdict and Q > 0: labelled by Q (good); with `--labels mc` its rollout
  estimate decides (`mc_value` 0 -> bad), as the option says.
"""

from __future__ import annotations

import json

import polars as pl
from reasonfactory.warehouse.export_tree import export_prm
from reasonfactory.warehouse.store import Warehouse

OK = {"kind": "equations", "ok": True}
NONE = {"kind": "equations", "ok": None}
BAD = {"kind": "equations", "ok": False}


def _node(node_id, parent, text, *, check=None, verified=None, correct=None, q=None, mc=None):
    kind = "answer" if text.startswith("The answer") else "step"
    terminal = correct is not None or kind == "answer"
    meta = {"kind": kind, "check": check, "verified": verified}
    return {
        "tree_id": "tr_1",
        "node_id": node_id,
        "parent_id": parent,
        "problem_id": "p_1",
        "run_id": "r_1",
        "depth": node_id.count("."),
        "text": text,
        "is_terminal": terminal,
        "correct": correct,
        "visits": 1,
        "q_value": q,
        "mc_value": mc,
        "meta": json.dumps(meta),
    }


NODES = [
    _node("0", None, ""),
    _node("0.1", "0", "Step 1: 2 + 3 = 5.", check=OK, verified=True, q=None),
    _node("0.1.1", "0.1", "Step 2: 5 * 4 = 21.", check=BAD, verified=False, correct=False, q=-1),
    _node("0.1.2", "0.1", "Step 2: 5 * 4 = 19.", check=BAD, verified=False, correct=False, q=-1),
    _node("0.2", "0", "Step 1: First add, then multiply.", check=NONE, q=None),
    _node("0.2.1", "0.2", "The answer is \\boxed{20}.", correct=True, q=1),
    _node("0.3", "0", "Step 1: Add the two numbers first.", check=NONE, q=0.5, mc=0.0),
    _node("0.3.1", "0.3", "The answer is \\boxed{20}.", correct=True, q=1),
]


def _export(tmp_path, labels="q"):
    wh_path = tmp_path / "wh.duckdb"
    with Warehouse(wh_path) as wh:
        wh.ingest(
            "problems",
            pl.DataFrame(
                {"problem_id": ["p_1"], "source": ["t"], "question": ["(2+3)*4?"], "gold": ["20"]}
            ),
        )
        wh.ingest("nodes", pl.DataFrame(NODES))
    out = tmp_path / f"prm-{labels}"
    export_prm(wh_path, out, fmt="jsonl", labels=labels)
    rows = [json.loads(x) for f in sorted(out.glob("*.jsonl")) for x in f.read_text().splitlines()]
    return {row["leaf_id"]: row["labels"] for row in rows}


def test_a_passed_step_with_a_null_q_is_good_and_a_label_is_never_guessed(tmp_path):
    labels = _export(tmp_path)
    assert labels["0.1.1"] == [True, False]  # A: its own check passed; Q is NULL
    assert labels["0.1.2"] == [True, False]
    assert "0.2.1" not in labels  # C: no verdict, NULL Q: left out, not labelled bad
    assert labels["0.3.1"] == [True, True]  # E: no verdict, labelled by Q > 0


def test_labels_from_mc_value_only_by_the_explicit_option(tmp_path):
    labels = _export(tmp_path, labels="mc")
    assert labels["0.3.1"] == [False, True]  # mc_value 0 decides E
    assert labels["0.1.1"] == [True, False]  # A has no rollout: its own check still wins
