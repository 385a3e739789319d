"""The teaching comparison of bench/bench_real_model.py is sound before any model runs: the
held-out problems are none of the problems the model is trained on, and the export's user
turn is exactly the prompt the eval asks (sim teacher only: no vLLM, no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # the bench imports its neighbour `common`
_spec = importlib.util.spec_from_file_location("bench_real", ROOT / "bench/bench_real_model.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_heldout_problems_are_disjoint_from_the_training_export(prefect_api, tmp_path):
    # Drawn before the teacher's run (main's order), 1 of these 200 held-out problems was in
    # the export of the teacher's 64 (4 at the bench's sizes, 360 and 200).
    sizes = {"teacher": 64, "heldout": 200}
    export, rows, heldout, checks = bench.teaching_data(tmp_path, tmp_path / "wh.duckdb", sizes)
    assert rows == checks["taught"] > 40
    assert checks["heldout"] == sizes["heldout"] == len(heldout.read_text().splitlines())
    assert checks["overlap"] == 0
    assert checks["same_prompt"] is True
