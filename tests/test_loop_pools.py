"""The loop's problem pools (flows/loop_config.py `make_pools`, generators/problems/pools.py):
one enumeration dealt into pools with the same mix, and no question in two pools, not even
as its mirror (`17 + 5` and `5 + 17`). Pure: no engine, no flow."""

from collections import Counter

import pytest
from reasonfactory.flows.loop_config import LoopConfig, make_pools
from reasonfactory.generators.problems.pools import canonical_question, mix_key, pool_mix

CONFIG = LoopConfig(
    name="pools",
    rounds=3,
    problems={"seed_set": 300, "held_out": 150, "per_round": 300, "compare_extra": 150},
    compare={"arm": {"generate": {}}},
)


def test_every_pool_has_the_same_mix_of_kinds():
    pools = make_pools(CONFIG)
    every = [p for name, items in pools.items() if name != "round-compare" for p in items]
    total = Counter(mix_key(p) for p in every)
    assert len(total) > 20  # 2-3 operations of four kinds: many kinds, rare ones included
    for name, items in pools.items():
        counts = Counter(mix_key(p) for p in items)
        for key, n in total.items():
            share = n * len(items) / len(every)
            # dealt in proportion: within two problems of its share, every kind, every pool
            assert abs(counts[key] - share) < 2, (name, key, counts[key], share)
    # the old rejection sampling used up multiplication and division in early pools (seed
    # 24% / 8%, round 3 0% / 0%): now each operation's share is the same in every pool
    mixes = [pool_mix(items) for items in pools.values()]
    for op in "+-*/":
        shares = [m[op] for m in mixes]
        assert min(shares) > 0.1 and max(shares) - min(shares) < 0.02, (op, shares)


@pytest.mark.parametrize("difficulty", [(1, 1), (2, 3)])
def test_no_question_is_in_two_pools_up_to_commutativity(difficulty):
    # one operation: the old split put 53 mirrored questions in two pools at these sizes
    config = CONFIG.model_copy(
        update={"problems": CONFIG.problems.model_copy(update={"difficulty": difficulty})}
    )
    pools = make_pools(config)
    seen: dict[str, str] = {}
    for name, items in pools.items():
        if name == "round-compare":  # round 1's problems, then its own extra ones
            assert items[: CONFIG.problems.per_round] == pools["round-1"]
            items = items[CONFIG.problems.per_round :]
        for p in items:
            key = canonical_question(p.question)
            assert key not in seen, (p.question, name, seen.get(key))
            seen[key] = name
    assert canonical_question("Compute (5 + 17) * 3.") == canonical_question(
        "Compute 3 * (17 + 5)."
    )
    assert canonical_question("Compute (17 - 5) * 3.") != canonical_question(
        "Compute (5 - 17) * 3."
    )


def test_the_default_family_is_multi_step_and_the_same_config_makes_the_same_pools():
    pools = make_pools(CONFIG)
    assert {p.difficulty for items in pools.values() for p in items} == {2, 3}
    assert make_pools(CONFIG) == pools
