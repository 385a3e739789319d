"""The pure search: UCT, random tie-breaking, backup, and the rebuild-from-events invariant."""

from __future__ import annotations

import math
import random
from collections import Counter

from reasonfactory.generators.methods.tree.mcts import (
    add_child,
    backup,
    iter_nodes,
    make_root,
    path_to,
    recompute_values,
    score_alone,
    select_child,
    uct,
)


def _star(n: int):
    root = make_root()
    kids = [add_child(root, "step", f"Step 1: option {i}.") for i in range(n)]
    return root, kids


def test_tags_and_depths_follow_rstar():
    root = make_root()
    a = add_child(root, "step", "a")
    b = add_child(root, "step", "b")
    b1 = add_child(b, "step", "b1")
    assert [n.node_id for n in iter_nodes(root)] == ["0", "0.1", "0.2", "0.2.1"]
    assert (a.depth, b1.depth, b1.parent is b) == (1, 2, True)
    assert path_to(b1) == [b, b1]


def test_unvisited_children_go_first_in_random_order_not_the_first_sampled():
    firsts = Counter()
    for seed in range(400):
        root, kids = _star(4)
        firsts[select_child(root, 2.0, random.Random(seed)).node_id] += 1
    assert set(firsts) == {"0.1", "0.2", "0.3", "0.4"}
    assert min(firsts.values()) > 60  # about 100 each; rStar's rule would give 400 to 0.1

    root, kids = _star(3)
    rng = random.Random(0)
    backup(add_child(kids[0], "answer", "x"), 1.0)  # 0.1 visited, Q = 1
    assert select_child(root, 2.0, rng) in kids[1:]  # an unvisited child still goes first


def test_uct_balances_value_and_visits():
    root, (good, bad) = _star(2)
    for _ in range(3):
        backup(add_child(good, "answer", "+"), 1.0)
    backup(add_child(bad, "answer", "-"), -1.0)
    assert good.q == 1.0 and bad.q == -1.0 and root.visits == 4
    assert uct(good, root.visits, 2.0) == 1.0 + 2.0 * math.sqrt(math.log(4) / 3)
    assert select_child(root, 2.0, random.Random(0)) is good
    assert select_child(root, 100.0, random.Random(0)) is bad  # exploration wins when c is huge


def test_terminal_and_exhausted_children_are_skipped():
    root, (a, b, c) = _star(3)
    a.terminal, b.exhausted = True, True
    assert select_child(root, 2.0, random.Random(0)) is c
    c.terminal = True
    assert select_child(root, 2.0, random.Random(0)) is None


def test_backup_reaches_the_root_and_score_alone_does_not():
    root, (step,) = _star(1)
    answer = add_child(step, "answer", "The answer is \\boxed{1}.")
    failed = add_child(step, "step", "Step 2: 1 + 1 = 3.")
    backup(answer, 1.0)
    score_alone(failed, -1.0)
    assert (root.visits, root.q, step.visits, step.q) == (1, 1.0, 1, 1.0)
    assert (failed.visits, failed.q) == (1, -1.0)


def test_recompute_rebuilds_every_value_from_the_events():
    rng = random.Random(7)
    root = make_root()
    frontier = [root]
    for _ in range(200):
        parent = rng.choice(frontier)
        kind = rng.choice(["step", "step", "answer", "failed"])
        child = add_child(parent, "answer" if kind == "answer" else "step", kind)
        if kind == "answer":
            backup(child, rng.choice([1.0, -1.0]))
        elif kind == "failed":
            score_alone(child, -1.0)
        else:
            frontier.append(child)
    before = [(n.node_id, n.visits, n.value_sum) for n in iter_nodes(root)]
    recompute_values(root)
    assert [(n.node_id, n.visits, n.value_sum) for n in iter_nodes(root)] == before
    events = [n for n in iter_nodes(root) if n.reward is not None and n.propagated]
    assert root.visits == len(events)
