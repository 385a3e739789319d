"""The loop's curriculum (`curriculum: {band: [0.2, 0.8]}`): pools per difficulty with the
same mix, each round's difficulty moved by the pass rate of the round before through
`gym.next_level`, recorded in the ledger and the table, and the same on a re-run. The sim
engine stands in for the student (its error rate does not depend on difficulty, so the
test sets the rate it needs); training is real and tiny."""

from __future__ import annotations

import json
from collections import Counter

import yaml
from reasonfactory.flows.loop import run_loop
from reasonfactory.flows.loop_config import LoopConfig, make_pools
from reasonfactory.flows.loop_ledger import Generation, Ledger, Level, Trained
from reasonfactory.flows.loop_stages import (
    choose_level,
    generate,
    generation_recipe,
    write_pools,
)
from reasonfactory.flows.loop_tables import loop_table
from reasonfactory.generators.problems.pools import canonical_question, mix_key

LOOP = {
    "name": "curr",
    "problems": {"seed_set": 6, "held_out": 6, "per_round": 8, "difficulty": [1, 3]},
    "curriculum": {"band": [0.2, 0.8], "start": 1},
    "engine": {"kind": "sim", "error_rate": 0.0},
    "teacher": {"kind": "sim", "error_rate": 0.0},
    "generate": {"method": "self_output", "samples": 2, "temperature": 0.8},
    "rounds": 2,
    "control": False,
    "student": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 64, "max_position_embeddings": 256},
    "train": {"max_steps": 1, "batch_size": 8},
    "round_steps": 1,
}  # fmt: skip


def test_each_difficulty_has_its_round_pools_with_the_same_mix():
    config = LoopConfig.model_validate(
        {
            **LOOP,
            "problems": {"seed_set": 90, "held_out": 90, "per_round": 120, "difficulty": [1, 3]},
        }
    )
    pools = make_pools(config)
    levels = config.levels()
    for k in range(1, config.rounds + 1):
        for d in levels:
            assert {p.difficulty for p in pools[f"round-{k}-d{d}"]} == {d}
    for name in ("seed", "heldout"):
        assert Counter(p.difficulty for p in pools[name]) == {d: 90 // len(levels) for d in levels}
    # within a difficulty, every pool holds each kind within two problems of its share
    for d in levels:
        at = {n: [p for p in items if p.difficulty == d] for n, items in pools.items()}
        every = [p for items in at.values() for p in items]
        total = Counter(mix_key(p) for p in every)
        assert len(total) > 3
        for name, items in at.items():
            counts = Counter(mix_key(p) for p in items)
            for key, n in total.items():
                assert abs(counts[key] - n * len(items) / len(every)) < 2, (name, d, key)
    keys = [canonical_question(p.question) for items in pools.values() for p in items]
    assert len(keys) == len(set(keys))  # no question in two pools, not even as its mirror


def test_the_level_goes_up_with_the_pass_rate_is_recorded_and_rerun_the_same(prefect_api, tmp_path):
    path = tmp_path / "curr.yaml"
    path.write_text(yaml.safe_dump(LOOP))
    ledger, config = run_loop(path)
    levels = [ledger.get(f"r{k}:level", Level) for k in (1, 2)]
    # the sim never errs: round 1's traces all pass the filters, so round 2 goes one up
    assert [lv.difficulty for lv in levels] == [1, 2]
    assert levels[0].pass_rate is None and levels[1].pass_rate == 1.0
    assert levels[1].measured_on == ledger.get("r1:generate", Generation).run_id
    work = tmp_path / "curr"
    for k, d in ((1, 1), (2, 2)):  # each round generated on its difficulty's pool
        rows = (work / "problems" / f"round-{k}-d{d}.jsonl").read_text().splitlines()
        assert {json.loads(r)["difficulty"] for r in rows} == {d}
    table = loop_table(ledger, config.rounds)
    assert [(r["difficulty"], r["level_pass_rate"]) for r in table[1:]] == [(1, None), (2, 1.0)]

    # a re-run that lost round 2's level picks it again from the recorded round 1 (and
    # redoes nothing else)
    state = json.loads((work / "state.json").read_text())
    state["stages"].pop("r2:level")
    (work / "state.json").write_text(json.dumps(state))
    again, _ = run_loop(path)
    assert again.get("r2:level", Level) == levels[1]
    assert again.get("r2:train", Trained) == ledger.get("r2:train", Trained)


def test_a_low_pass_rate_takes_the_level_down(prefect_api, tmp_path):
    config = LoopConfig.model_validate(
        {**LOOP, "engine": {"kind": "sim", "error_rate": 0.95}, "curriculum": {"start": 3}}
    )
    pools = write_pools(config, tmp_path)
    warehouse = tmp_path / "w.duckdb"
    made = generate(generation_recipe(config, "r1:generate", "sim", pools.rounds[0]), warehouse)
    ledger = Ledger(tmp_path)
    ledger.once("r1:level", choose_level, config, ledger, warehouse, 1)
    ledger.once("r1:generate", lambda: made)
    chosen = choose_level(config, ledger, warehouse, 2)
    assert chosen.pass_rate is not None and chosen.pass_rate < 0.2
    assert chosen.difficulty == 2
    # inside the band it stays
    wide = {**config.model_dump(), "curriculum": {"band": [0.0, 1.0], "start": 3}}
    wide = LoopConfig.model_validate(wide)
    assert choose_level(wide, ledger, warehouse, 2).difficulty == 3
