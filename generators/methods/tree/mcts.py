"""Pure Monte Carlo tree search over reasoning steps: node records, UCT, selection, backup.

No engine, no I/O, no text protocol: `search.py` drives the search and decides what a
node's text is. A node is a step (or the root, or the answer paragraph after `</think>`),
tagged rStar-style: `"0"` is the root, `"0.2"` its second child, `"0.2.1"` that one's first.

Selection is UCT, `Q + c * sqrt(ln N_parent / N)`. A child never visited goes first, and
ties (all the unvisited children, or equal scores) are broken at random with the tree's own
seeded `random.Random`: rStar scores unvisited children 0 and takes the first, which makes
the first sampled step win every tie. Terminal children are skipped; a node whose children
are all terminal or exhausted is `exhausted` and the rollout ends there.

`backup` adds a terminal reward to the node and every ancestor (N += 1, W += r, Q = W / N);
`score_alone` gives a reward to the node only. As in rStar, an answer's reward is backed up
and an invalid terminal (a failed check, the depth limit) is scored alone, so a correct
step's Q is the mean outcome of the answers below it, not lowered by its children's slips.
Every reward belongs to exactly one terminal event, so `recompute_values` can rebuild all N
and Q from the events alone: the search uses it after re-scoring answers against a
majority, and tests use it as an invariant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(eq=False)
class Node:
    node_id: str
    depth: int
    kind: str  # "root" | "step" | "answer"
    text: str | None  # None: an answer paragraph still to be written
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    closes: bool = False  # the thought ends after this step: the answer paragraph follows
    expanded: bool = False
    terminal: bool = False
    exhausted: bool = False
    reason: str | None = (
        None  # why terminal: answer | failed_check | no_claim | max_depth | truncated
    )
    visits: int = 0
    value_sum: float = 0.0
    reward: float | None = None  # the terminal reward recorded at this node, if any
    propagated: bool = False  # whether that reward was backed up to the root
    correct: bool | None = None
    answer: str | None = None
    check: dict | None = None
    checks: list[dict] = field(default_factory=list)
    mc_value: float | None = None
    rollout_answers: list[str | None] | None = None
    tokens: int = 0
    samples: int = 1  # how many of the parent's sampled continuations wrote this text
    prm_score: float | None = None  # a step scorer's P(good) (methods/beam.py)

    @property
    def q(self) -> float | None:
        return self.value_sum / self.visits if self.visits else None


def make_root() -> Node:
    return Node(node_id="0", depth=0, kind="root", text="")


def add_child(parent: Node, kind: str, text: str | None, **fields) -> Node:
    """Append a child with the next tag (`0.1`, `0.2`, ...).

    >>> root = make_root(); add_child(root, "step", "Step 1: 1 + 1 = 2.").node_id
    '0.1'
    """
    child = Node(
        node_id=f"{parent.node_id}.{len(parent.children) + 1}",
        depth=parent.depth + 1,
        kind=kind,
        text=text,
        parent=parent,
        **fields,
    )
    parent.children.append(child)
    return child


def backup(node: Node, reward: float) -> None:
    """Record a terminal event at `node` and add its reward to it and every ancestor."""
    node.reward, node.propagated = reward, True
    _add(node, reward, to_root=True)


def score_alone(node: Node, reward: float) -> None:
    """Record a terminal event at `node` that counts for the node only (rStar's invalid nodes)."""
    node.reward, node.propagated = reward, False
    _add(node, reward, to_root=False)


def _add(node: Node | None, reward: float, to_root: bool) -> None:
    while node is not None:
        node.visits += 1
        node.value_sum += reward
        node = node.parent if to_root else None


def uct(child: Node, parent_visits: int, c: float) -> float:
    """UCT score; an unvisited child scores +inf (it goes before any revisit)."""
    if child.visits == 0:
        return math.inf
    return child.q + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def select_child(node: Node, c: float, rng: random.Random) -> Node | None:
    """The open child with the best UCT score, ties broken at random; None if none is open."""
    open_children = [ch for ch in node.children if not ch.terminal and not ch.exhausted]
    if not open_children:
        return None
    return max(open_children, key=lambda ch: (uct(ch, node.visits, c), rng.random()))


def path_to(node: Node) -> list[Node]:
    """The nodes from the root's first child down to `node` (the root excluded)."""
    out = []
    while node is not None and node.kind != "root":
        out.append(node)
        node = node.parent
    return out[::-1]


def iter_nodes(root: Node) -> Iterator[Node]:
    """Every node, parents before children, children in tag order."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def recompute_values(root: Node) -> None:
    """Rebuild every N and W from the recorded terminal rewards."""
    nodes = list(iter_nodes(root))
    for node in nodes:
        node.visits, node.value_sum = 0, 0.0
    for node in nodes:
        if node.reward is not None:
            _add(node, node.reward, to_root=node.propagated)
