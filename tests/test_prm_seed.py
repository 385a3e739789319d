"""`train --kind prm` is reproducible: the same rows, base and `seed` give the same PRM.

The classification head is new (not in the base's weights), so it is drawn at random when the
model is built, before the `Trainer` seeds anything; `train_prm` seeds it from `seed`.
"""

from __future__ import annotations

import json

from reasonfactory.generators.student import StudentShape, build_student
from reasonfactory.generators.train import TrainConfig, train_model
from safetensors.torch import load_file

TINY = StudentShape(
    hidden_size=32, num_hidden_layers=1, num_attention_heads=1, intermediate_size=64
)


def test_the_same_seed_trains_the_same_prm_and_another_seed_does_not(tmp_path):
    data = tmp_path / "prm"
    data.mkdir()
    rows = [{"prompt": f"Problem {i}", "completions": [f"Step 1: {i} + 1 = {i + 1}."],
             "labels": [i % 3 != 0], "problem_id": f"p{i}"} for i in range(24)]  # fmt: skip
    (data / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = build_student(tmp_path / "base", TINY)
    heads, losses = [], []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        config = TrainConfig(kind="prm", max_steps=2, batch_size=8, holdout=0.0, seed=seed)
        metrics = train_model([data], base, tmp_path / run, config)
        heads.append(load_file(str(tmp_path / run / "model.safetensors"))["score.weight"])
        losses.append(metrics["first_loss"])
    assert heads[0].equal(heads[1]) and losses[0] == losses[1]
    assert not heads[0].equal(heads[2])
