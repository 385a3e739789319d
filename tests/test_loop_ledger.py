"""The loop's ledger (flows/loop_ledger.py): stages run once and their typed results come
back from `state.json` as the same dataclasses; an old or broken `state.json` is a one-line
error that says what to do, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from reasonfactory.flows.loop_ledger import (
    Chunk,
    Exported,
    Generation,
    Ledger,
    Pools,
    Scored,
    SelfCorrection,
    Trained,
)
from reasonfactory.warehouse.errors import UserError

GEN = Generation("r_1", problems=30, traces=60, kept=12, tokens_generated=900, tokens_reused=40)
RESULTS = {
    "problems": Pools("seed.jsonl", "heldout.jsonl", ("round-1.jsonl",), "round-compare.jsonl"),
    "r1:generate": GEN,
    "cmp:a:generate:chunk-1": Chunk(10, GEN),
    "r1:export": Exported(12, "exports/r1"),
    "cold:export": Exported(0, None),
    "r1:train": Trained("models/round-1", "m_1"),
    "r1:eval": Scored("r_2", 0.25, 0.1, 0.4, 30, SelfCorrection(30, 5, 1, 1)),
}
OLD_STATE = {  # what the loop wrote before its results were typed
    "problems": {"seed": "seed.jsonl", "heldout": "heldout.jsonl"},
    "r1:generate": {"run_id": "r_1", "generated": 60, "kept": 12, "tokens": 900},
    "r1:export": 12,
}


def test_a_stage_runs_once_and_its_result_comes_back_typed(tmp_path):
    ledger, calls = Ledger(tmp_path), []
    for stage, result in RESULTS.items():
        assert ledger.once(stage, lambda r=result: calls.append(r) or r) == result
        assert ledger.once(stage, lambda: calls.append("again")) == result
    assert calls == list(RESULTS.values())  # each ran once
    again = Ledger(tmp_path)
    assert again.results == RESULTS
    assert again.get("r1:generate", Generation).tokens_used == 940
    state = json.loads((tmp_path / "state.json").read_text())  # readable: fields and type
    assert state["format"] == 2
    assert state["stages"]["r1:generate"] == {"type": "Generation", **GEN.__dict__}


def test_a_stage_result_must_be_a_result(tmp_path):
    with pytest.raises(TypeError, match="not a stage result"):
        Ledger(tmp_path).once("r1:export", lambda: 12)
    assert not (tmp_path / "state.json").exists()


def test_an_old_state_file_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(OLD_STATE))
    with pytest.raises(UserError, match="format 1.*start the loop in a new workdir"):
        Ledger(tmp_path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "Nonsense"}, "stage 'r1:generate': 'type' must be one of Pools, "),
        ({"type": "Generation", "run_id": "r"}, "stage 'r1:generate': problems: Field required"),
        ({**GEN.__dict__, "type": "Generation", "kept": "many"}, "stage 'r1:generate': kept: "),
    ],
)
def test_a_broken_stage_names_the_stage_and_the_field(tmp_path, entry, message):
    (tmp_path / "state.json").write_text(
        json.dumps({"format": 2, "stages": {"r1:generate": entry}})
    )
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        Ledger(tmp_path)


def test_a_stage_of_another_type_is_an_error(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.once("r1:export", lambda: Exported(3, "x"))
    with pytest.raises(UserError, match="holds a Exported, not a Generation"):
        ledger.get("r1:export", Generation)


def test_the_loop_command_refuses_an_old_workdir_in_one_line(tmp_path):
    (tmp_path / "tiny.yaml").write_text("name: tiny\nrounds: 1\n")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "state.json").write_text(json.dumps(OLD_STATE))
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "loop",
         str(tmp_path / "tiny.yaml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "new workdir" in lines[0]
    assert "Traceback" not in proc.stderr
