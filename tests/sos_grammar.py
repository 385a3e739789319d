"""A Stream-of-Search trace checker and a Countdown expression evaluator, for the tests.

Written apart from the generator: `parse_sos` replays the search from the trace text alone
(every state, move, generated node and backtrack must be consistent with what came before)
and `evaluate_expression` reads an answer with Python's `ast` module over exact fractions.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

STATE = re.compile(r"Current State: (\d+):\[([\d, ]*)\], Operations: \[(.*)\]")
EXPLORE = re.compile(
    r"Exploring Operation: (\d+)([-+*/])(\d+)=(\d+), Resulting Numbers: \[([\d, ]*)\]"
)
GENERATED = re.compile(r"Generated Node #([\d,]+): (\d+):\[([\d, ]*)\] Operation: (\S+)")
MOVE = re.compile(r"Moving to Node #([\d,]+)")
VERDICT = re.compile(r"(\d+),(\d+) (equal: Goal Reached|unequal: No Solution)")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(", ")] if text else []


def _legal(a: int, op: str, b: int, r: int) -> bool:
    if op == "+":
        return a + b == r
    if op == "*":
        return a * b == r
    if op == "-":
        return a >= b and a - b == r
    return b != 0 and a % b == 0 and a // b == r


def parse_sos(trace: str) -> dict:
    """Replay a trace; raise AssertionError at the first line that breaks the grammar."""
    lines = trace.split("\n")
    first = STATE.fullmatch(lines[0])
    assert first and first.group(3) == "", lines[0]
    target = int(first.group(1))
    nodes = {"0": (_ints(first.group(2)), [])}
    current, pending_move, last = "0", None, None
    explored = 0
    solved = False
    for n, line in enumerate(lines[1:], start=1):
        where = f"line {n}: {line!r}"
        assert not solved, f"text after Goal Reached at {where}"
        if m := STATE.fullmatch(line):
            assert pending_move is not None, f"a state without a move to it at {where}"
            nums, ops = nodes[pending_move]
            assert int(m.group(1)) == target and _ints(m.group(2)) == nums, where
            assert m.group(3) == ", ".join(f"'{o}'" for o in ops), where
            current, pending_move, last = pending_move, None, None
        elif m := EXPLORE.fullmatch(line):
            assert pending_move is None, where
            a, op, b, r = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            assert _legal(a, op, b, r), f"illegal move at {where}"
            nums = list(nodes[current][0])
            for used in (a, b):
                assert used in nums, f"{used} not available in {nums} at {where}"
                nums.remove(used)
            result = _ints(m.group(5))
            assert Counter(result) == Counter([*nums, r]) and result[-1] == r, where
            last = (result, f"{a}{op}{b}={r}")
            explored += 1
        elif m := VERDICT.fullmatch(line):
            assert last is not None and len(last[0]) == 1, where
            assert int(m.group(1)) == last[0][0] and int(m.group(2)) == target, where
            assert (m.group(3) == "equal: Goal Reached") == (last[0][0] == target), where
            solved = m.group(3).startswith("equal")
            last = None
        elif m := GENERATED.fullmatch(line):
            assert last is not None and len(last[0]) > 1, where
            idx = m.group(1)
            assert idx.rsplit(",", 1)[0] == current and idx not in nodes, where
            assert int(m.group(2)) == target and _ints(m.group(3)) == last[0], where
            assert m.group(4) == last[1], where
            nodes[idx] = (last[0], [*nodes[current][1], last[1]])
            last = None
        elif m := MOVE.fullmatch(line):
            assert m.group(1) in nodes and pending_move is None, where
            pending_move = m.group(1)
        elif line == "No solution found.":
            assert n == len(lines) - 1, where
        else:
            raise AssertionError(f"not in the SoS grammar at {where}")
    return {"target": target, "numbers": nodes["0"][0], "solved": solved, "explored": explored}


def evaluate_expression(text: str) -> tuple[Fraction, list[int]]:
    """Value and literals of `a op b ...` via Python's ast; only + - * / and integers."""
    ops = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b,
    }
    literals: list[int] = []

    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            literals.append(node.value)
            return Fraction(node.value)
        raise AssertionError(f"not a Countdown expression: {ast.dump(node)}")

    return walk(ast.parse(text, mode="eval").body), literals
