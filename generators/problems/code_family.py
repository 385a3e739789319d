"""`builtin:code`: small seeded programming problems (read stdin, print the answer), with tests.

Six tasks, each a question with a parameter drawn per problem (sum the numbers divisible by
k, count a letter, the best window of w numbers, Fibonacci modulo m, gcds of pairs, words
joined in reverse; 132 distinct questions, so a recipe's default of 100 problems fits), ten
stdio tests per problem (edge cases first, then random inputs whose size grows with
`difficulty` 1..3), the expected outputs computed here by a reference in Python. Each task
also knows, from its question alone, the program that solves it and a wrong one (a slip a
person makes: an off-by-one, a forgotten case): the sim engine writes those
(`code_program`), and writes crashing, looping and hostile programs for any task.

Not here: running the programs (`generators.verify.code_tests`).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from reasonfactory.generators.problems.code import code_gold, code_meta
from reasonfactory.generators.problems.problem import Problem
from reasonfactory.generators.verify.code_tests import read_tests

TESTS = 10
STDIO = "Read the input from standard input and print the answer to standard output."


@dataclass(frozen=True)
class Task:
    name: str
    question: str  # with {p}: the task's parameter
    draw: Callable[[random.Random], object]  # the parameter
    inputs: Callable[[random.Random, object, int], list[str]]  # edge cases, then random
    answer: Callable[[object, str], str]  # the reference: input -> expected output
    right: str  # the program (with {p})
    wrong: str  # a slip (with {p})


def _ints(rng: random.Random, n: int, lo: int = -100, hi: int = 100) -> str:
    return " ".join(str(rng.randint(lo, hi)) for _ in range(n))


def _size(rng: random.Random, difficulty: int) -> int:
    return rng.randint(1, 10**difficulty)


def _fib(n: int, m: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % m
    return a % m


_WORDS = ("apple", "river", "stone", "cloud", "maple", "tiger", "orbit", "lemon", "piano")


def _pairs(rng: random.Random, t: int) -> str:
    lines = [f"{rng.randint(1, 10**6)} {rng.randint(1, 10**6)}" for _ in range(t)]
    return f"{t}\n" + "\n".join(lines)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "sum_divisible",
            "Read one line of integers and print the sum of those divisible by {p}.",
            lambda rng: rng.randint(2, 30),
            lambda rng, k, d: (
                [f"{-k} {2 * k} 1", "0", "1 2 3"]
                + [_ints(rng, _size(rng, d)) for _ in range(TESTS - 3)]
            ),
            lambda k, s: str(sum(x for x in map(int, s.split()) if x % k == 0)),
            "nums = list(map(int, input().split()))\nprint(sum(x for x in nums if x % {p} == 0))\n",
            "nums = list(map(int, input().split()))\n"
            "print(sum(x for x in nums if x % {p} == 0 and x > 0))\n",
        ),
        Task(
            "count_letter",
            "Read one line of lowercase words and print how many times the letter '{p}' occurs.",
            lambda rng: rng.choice("abcdefghijklmnoprstuvwy"),
            lambda rng, c, d: (
                [f"{c}", "xyz", f"{c}{c} q{c}"]
                + [
                    " ".join(rng.choice(_WORDS) for _ in range(_size(rng, d)))
                    for _ in range(TESTS - 3)
                ]
            ),
            lambda c, s: str(s.count(c)),
            "print(input().count('{p}'))\n",
            "print(input().strip().split()[0].count('{p}'))\n",
        ),
        Task(
            "best_window",
            "Read n on the first line and n integers on the second (n >= {p}); print the "
            "largest sum of {p} consecutive integers.",
            lambda rng: rng.randint(2, 10),
            lambda rng, w, d: (
                [
                    f"{w + 2}\n{' '.join(['50'] * w + ['-1', '-1'])}",
                    f"{w}\n{' '.join(['-3'] * w)}",
                ]
                + [(lambda n: f"{n}\n{_ints(rng, n)}")(w + _size(rng, d)) for _ in range(TESTS - 2)]
            ),
            lambda w, s: (lambda a: str(max(sum(a[i : i + w]) for i in range(len(a) - w + 1))))(
                list(map(int, s.split("\n")[1].split()))
            ),
            "n = int(input())\na = list(map(int, input().split()))\n"
            "print(max(sum(a[i:i + {p}]) for i in range(n - {p} + 1)))\n",
            "n = int(input())\na = list(map(int, input().split()))\n"
            "print(max(sum(a[i:i + {p}]) for i in range(1, n - {p} + 1)))\n",
        ),
        Task(
            "fibonacci_mod",
            "Read n and print the n-th Fibonacci number modulo {p}, where F(0) = 0 and F(1) = 1.",
            lambda rng: rng.choice(
                [7, 10, 11, 13, 97, 100, 101, 1000, 1009, 10007, 65537, 10**9 + 7]
            ),
            lambda rng, m, d: (
                ["0", "1", "2", "10"] + [str(rng.randint(3, 30 * 10**d)) for _ in range(TESTS - 4)]
            ),
            lambda m, s: str(_fib(int(s), m)),
            "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, (a + b) % {p}\n"
            "print(a % {p})\n",
            "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, (a + b) % {p}\n"
            "print(b % {p})\n",
        ),
        Task(
            "gcd_pairs",
            "Read T, then T lines of two positive integers each; print the greatest common "
            "divisor of each pair on its own line, each plus {p}.",
            lambda rng: rng.randint(0, 50),
            lambda rng, _, d: (
                ["1\n12 18", "2\n7 7\n1 99"]
                + [_pairs(rng, _size(rng, d)) for _ in range(TESTS - 2)]
            ),
            lambda add, s: "\n".join(
                str(math.gcd(*map(int, line.split())) + add) for line in s.split("\n")[1:]
            ),
            "import math\nt = int(input())\nfor _ in range(t):\n"
            "    a, b = map(int, input().split())\n    print(math.gcd(a, b) + {p})\n",
            "t = int(input())\nfor _ in range(t):\n    a, b = map(int, input().split())\n"
            "    print(min(a, b) + {p})\n",
        ),
        Task(
            "reverse_words",
            "Read one line of words and print them in reverse order, joined by '{p}'.",
            lambda rng: rng.choice([",", ";", "-", "+", "|", "/", ":", "_"]),
            lambda rng, sep, d: (
                ["one", "ab cd"]
                + [
                    " ".join(rng.choice(_WORDS) for _ in range(_size(rng, d)))
                    for _ in range(TESTS - 2)
                ]
            ),
            lambda sep, s: sep.join(reversed(s.split())),
            "print('{p}'.join(reversed(input().split())))\n",
            "print('{p}'.join(input().split()))\n",
        ),
    )
}

# Programs for any task: what a model's failures look like to a test runner.
CRASHING = "import sys\ndata = sys.stdin.read().split()\nprint(data[len(data)])\n"
LOOPING = "steps = 0\nwhile steps >= 0:\n    steps += 1\nprint(steps)\n"
HOSTILE = (
    "import os, socket\n"
    "print(open('/proc/1/environ').read())  # another process's secrets\n"
    "s = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/docker.sock')  # the host\n"
    "open(os.path.expanduser('~/../../etc/cron.d/rf'), 'w').write('* * * * * root id')\n"
)


def make_code_problem(rng: random.Random, difficulty: int) -> Problem:
    """One problem of a random task: question, tests (stdio), gold and meta."""
    task = TASKS[rng.choice(sorted(TASKS))]
    p = task.draw(rng)
    inputs = task.inputs(rng, p, difficulty)
    tests = [{"input": s + "\n", "output": task.answer(p, s) + "\n"} for s in inputs]
    spec = read_tests({"shape": "stdio", "tests": tests})
    question = task.question.format(p=p) + " " + STDIO
    meta = code_meta("builtin", spec) | {"task": task.name}
    return Problem(question, code_gold(spec), "code", difficulty, meta)


def parse_code_question(question: str) -> tuple[Task, str] | None:
    """The task and parameter of a `builtin:code` question, or None for another text.

    >>> task, p = parse_code_question(TASKS["sum_divisible"].question.format(p=3) + " " + STDIO)
    >>> task.name, p
    ('sum_divisible', '3')
    """
    for task in TASKS.values():
        pattern = re.escape(task.question).replace(re.escape("{p}"), "(.+?)")
        m = re.match(pattern, question)
        if m:
            return task, m.group(1)
    return None


def code_program(question: str, kind: str) -> str:
    """The program of `kind` (`right`, `wrong`, `crashing`, `looping`, `hostile`) for a
    `builtin:code` question; ValueError for another text."""
    found = parse_code_question(question)
    if found is None:
        raise ValueError("not a builtin:code question")
    task, p = found
    if kind in ("right", "wrong"):
        return getattr(task, kind).replace("{p}", p)
    return {"crashing": CRASHING, "looping": LOOPING, "hostile": HOSTILE}[kind]


def tests_json(problem: Problem) -> str:
    """The problem's tests as stored (for tests and benches)."""
    return json.dumps(problem.meta["code"])
