"""Problem pools that are alike: one enumeration of a family, distinct up to commutativity,
dealt into pools (seed set, held-out, each round) so that every pool has the same mix.

- `canonical_question`: a question's form up to commutativity (`Compute (5 + 17) * 3.` and
  `Compute (17 + 5) * 3.` are one question), so no question sits in two pools as its mirror.
- `mix_key`: what a pool's mix is made of (difficulty and the operations in order).
- `split_pools`: shuffle with a seed, then deal each mix key's problems to the pools in
  proportion to their sizes (`deal`), so each pool holds each kind within one problem of
  its share. Rejection sampling until a pool is full (the old way) used up the rare kinds
  early and left later pools with another mix.

Not here: making problems (`families.py`) or writing pools to files (flows/loop_stages.py).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter, defaultdict

from reasonfactory.generators.problems.problem import Problem

_EXPR = re.compile(r"^Compute (.+)\.$")
_COMMUTATIVE = (ast.Add, ast.Mult)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _canon(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _canon(node.left), _canon(node.right)
        if isinstance(node.op, _COMMUTATIVE):
            left, right = sorted((left, right))
        return f"({left} {_OPS[type(node.op)]} {right})"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"(-{_canon(node.operand)})"
    return ast.unparse(node)


def canonical_question(question: str) -> str:
    """A question up to commutativity of `+` and `*` (other families: the question itself).

    >>> canonical_question("Compute (5 + 17) * 3.") == canonical_question("Compute 3 * (17 + 5).")
    True
    >>> canonical_question("Compute 17 - 5.") == canonical_question("Compute 5 - 17.")
    False
    """
    m = _EXPR.match(question.strip())
    if not m:
        return question.strip()
    try:
        tree = ast.parse(m.group(1), mode="eval")
    except SyntaxError:
        return question.strip()
    return "Compute " + _canon(tree.body)


def mix_key(problem: Problem) -> str:
    """The kind of problem a pool's mix counts: difficulty, and the operations in order for
    arithmetic (`2:+*`).

    >>> mix_key(Problem("Compute (17 + 5) * 3.", "66", "arithmetic", 2))
    '2:+*'
    """
    ops = (
        "".join(re.findall(r" ([-+*/]) ", problem.question))
        if problem.family == "arithmetic"
        else ""
    )
    return f"{problem.difficulty}:{ops}"


def deal(n: int, sizes: list[int]) -> list[int]:
    """Which pool each of `n` items goes to, so every stretch of the sequence gives each pool
    its share (the pool furthest behind its quota takes the next item).

    >>> deal(6, [2, 1])
    [0, 1, 0, 0, 1, 0]
    """
    total = sum(sizes)
    given = [0] * len(sizes)
    out = []
    for i in range(n):
        p = max(range(len(sizes)), key=lambda j: (sizes[j] * (i + 1) / total - given[j], -j))
        given[p] += 1
        out.append(p)
    return out


def split_pools(problems: list[Problem], sizes: dict[str, int], seed: int) -> dict[str, list]:
    """Deal the problems into pools of the given sizes (in that order), each with the same mix.

    The problems are shuffled with `seed`, grouped by `mix_key`, and dealt group after group
    (`deal`), so a pool gets each kind in proportion to its size; within a pool, the order
    is shuffled again. Needs exactly `sum(sizes)` problems.

    >>> ps = [Problem(f"Compute {i} {op} 2.", "0", "arithmetic", 1) for i in range(2, 12)
    ...       for op in "+*"]
    >>> pools = split_pools(ps, {"a": 10, "b": 10}, seed=0)
    >>> [sum(" * " in p.question for p in pools[k]) for k in "ab"]
    [5, 5]
    """
    if len(problems) != sum(sizes.values()):
        raise ValueError(f"{len(problems)} problems for pools of {sum(sizes.values())}")
    rng = random.Random(f"pools:{seed}")
    shuffled = list(problems)
    rng.shuffle(shuffled)
    groups: dict[str, list[Problem]] = defaultdict(list)
    for p in shuffled:
        groups[mix_key(p)].append(p)
    ordered = [p for key in sorted(groups) for p in groups[key]]
    names = list(sizes)
    pools: dict[str, list[Problem]] = {name: [] for name in names}
    for p, j in zip(ordered, deal(len(ordered), list(sizes.values())), strict=True):
        pools[names[j]].append(p)
    for name in names:
        rng.shuffle(pools[name])
    return pools


def pool_mix(problems: list[Problem]) -> dict[str, float]:
    """Each operation's share of a pool's operations (arithmetic), and each difficulty's share
    of its problems: what the bench prints per pool.

    >>> pool_mix([Problem("Compute (17 + 5) * 3.", "66", "arithmetic", 2)])
    {'+': 0.5, '-': 0.0, '*': 0.5, '/': 0.0, 'd2': 1.0}
    """
    ops = Counter(op for p in problems for op in re.findall(r" ([-+*/]) ", p.question))
    n_ops = sum(ops.values()) or 1
    mix = {op: round(ops[op] / n_ops, 3) for op in "+-*/"}
    levels = Counter(p.difficulty for p in problems)
    mix.update({f"d{d}": round(levels[d] / len(problems), 3) for d in sorted(levels)})
    return mix
