"""The code verifier (generators/verify/code_tests.py): which part of a reply is the program,
how outputs compare, and the verdict of each way a program can fail, run in the real sandbox.

Replies are written the way models write them: a thought, then prose and one or more fenced
blocks (an example output block after the code, a bash line before it).
"""

from __future__ import annotations

import json

import pytest
from reasonfactory.generators.verify.code_compare import same_output, same_value
from reasonfactory.generators.verify.code_tests import (
    CodeOptions,
    _records,
    extract_code,
    program_of,
    read_tests,
    verify_code,
    verify_many,
)
from reasonfactory.generators.verify.sandbox_layers import weak_layers

QUICK = CodeOptions(timeout_s=1.5, memory_mb=256)
ADD = read_tests(
    {
        "shape": "stdio",
        "tests": [
            {"input": "2 3\n", "output": "5\n"},
            {"input": "-7 10\n", "output": "3\n"},
            {"input": "100 1\n", "output": "101\n"},
        ],
    }
)
R1_REPLY = """<think>
We need to read two integers and print their sum. Something like:
```python
print(a + b)
```
but we must parse the input first.
</think>

Here is the solution:

```bash
python3 sol.py < input.txt
```

```python
a, b = map(int, input().split())
print(a + b)
```

For the input `2 3` it prints:

```
5
```
"""


@pytest.fixture(autouse=True)
def _strong_sandbox():
    if weak_layers():
        pytest.skip(f"this machine's sandbox lacks {weak_layers()} (CI has them)")


@pytest.mark.parametrize(
    ("text", "how", "expected"),
    [
        (R1_REPLY, "last_block", "a, b = map(int, input().split())\nprint(a + b)\n"),
        (R1_REPLY, "first_block", "a, b = map(int, input().split())\nprint(a + b)\n"),
        ("<think>```python\nx = 1\n```</think>\n\nNo code, sorry.", "last_block", None),
        ("<think>still thinking ```python\nprint(1)\n```", "last_block", None),  # unclosed
        ("```\nprint(1)\n```\n```\n3\n```", "last_block", "3\n"),  # untagged: the last
        ("```py\nprint(1)\n```\n```\n3\n```", "last_block", "print(1)\n"),  # tagged wins
        ("```python\nprint(1)", "last_block", "print(1)"),  # cut off before the fence ends
        ("print(1)", "last_block", None),
        ("print(1)", "auto", "print(1)"),  # a bare program
        ("<think>x</think>\n\nprint(1)", "auto", None),  # a reply without a block
        ("anything ```x```", "whole", "anything ```x```"),
    ],
)
def test_the_program_is_the_last_python_block_after_the_thought(text, how, expected):
    assert extract_code(text, how) == expected


@pytest.mark.parametrize(
    ("got", "expected", "mode", "same"),
    [
        ("5\n", "5\n", "exact", True),
        ("5", "5\n", "exact", False),
        ("1  2 \n3\n\n", "1 2\n3", "whitespace", True),
        ("1 2 3", "1 2\n3", "whitespace", False),  # lines matter
        ("YES", "yes", "whitespace", False),
        ("0.3333333", "0.333333333", "float", True),
        ("0.3334", "0.333333333", "float", False),
        ("3", "3.0", "float", True),
        ("3", "3.0", "whitespace", False),
        ("nan", "nan", "float", True),
        ("abc 1.0", "abc 1", "float", True),
    ],
)
def test_outputs_compare_by_the_problem_s_mode(got, expected, mode, same):
    assert same_output(got, expected, mode) is same


@pytest.mark.parametrize(
    ("got", "expected", "mode", "same"),
    [
        ([1, [2, 3]], [1, [2, 3]], "exact", True),
        (True, 1, "exact", False),  # a bool is not a number here
        (1.0000001, 1, "float", True),
        (1.0000001, 1, "exact", False),
        ({"repr": "<__main__.E object>"}, "anything", "exact", False),
        ({"dict": {"a": 1}}, {"a": 1}, "exact", True),
        ({"a": 1}, {"a": 1}, "exact", False),  # a dict only ever arrives wrapped
        ({"float": "inf"}, 1e309, "exact", True),
    ],
)
def test_return_values_compare_as_plain_data(got, expected, mode, same):
    assert same_value(got, expected, mode) is same


@pytest.mark.parametrize(
    ("program", "verdict", "passed", "detail"),
    [
        ("a, b = map(int, input().split())\nprint(a + b)\n", "passed", 3, "3/3"),
        ("import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n", "passed", 3, ""),
        ("print(sum(map(int, open(0).read().split())))\nexit()\n", "passed", 3, ""),
        ("a, b = map(int, input().split())\nprint(a + b if a > 0 else 0)\n", "failed_tests", 2, ""),
        (
            "a, b = map(int, input().split())\nprint(a + b if b != 10 else a // 0)\n",
            "runtime_error",
            1,
            "Zero",
        ),
        ("import sys\nsys.exit(3)\n", "runtime_error", 0, "exit(3)"),
        ("while True:\n    pass\n", "timeout", 0, "ran past"),
        # ignores its timer: the CPU limit kills it, and bubblewrap exits 128 + SIGXCPU
        (
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
            "timeout",
            0,
            "deadline",
        ),
        ("x = bytearray(10**10)\n", "memory", 0, "MemoryError"),
        ("def f(:\n    pass\n", "syntax_error", 0, "line 1"),
        ("import os\nos.write(1, b'5\\n')\nos._exit(0)\n", "runtime_error", 0, "ended"),
    ],
)
def test_each_way_a_program_fails_has_its_verdict(program, verdict, passed, detail):
    v = verify_code(ADD, f"```python\n{program}```", QUICK)
    assert (v.verdict, v.passed, v.total) == (verdict, passed, 3), v
    assert detail in v.detail
    assert v.layers  # what the sandbox ran under, as the child reported it


def test_a_failing_case_is_shown_cut_to_a_few_hundred_characters():
    long = read_tests({"shape": "stdio", "tests": [{"input": "x" * 5000, "output": "1"}]})
    v = verify_code(long, "```python\nprint(len(input()) * 'y')\n```", QUICK)
    assert v.verdict == "failed_tests"
    case = v.first_failure
    assert case["test"] == 1 and case["expected"] == "1"
    assert len(case["input"]) <= 300 and case["input"].endswith("...")
    assert len(case["got"]) <= 300


def test_early_stop_stops_at_the_first_error_and_every_test_can_run():
    program = "```python\na, b = map(int, input().split())\nprint(a + b if a != 2 else 1 / 0)\n```"
    stopped = verify_code(ADD, program, QUICK)
    assert (stopped.verdict, stopped.passed) == ("runtime_error", 0)
    assert stopped.seconds > 0
    whole = verify_code(ADD, program, CodeOptions(timeout_s=1.5, early_stop=False))
    assert (whole.verdict, whole.passed) == ("runtime_error", 2)  # the other two ran


def test_a_function_is_called_and_its_value_compared_outside_the_sandbox():
    tests = read_tests(
        {
            "shape": "call",
            "entry_point": "pair",
            "tests": [
                {"args": [1, 2], "expected": [1, 2]},
                {"args": [[3], 4], "expected": [[3], 4]},
            ],
        }
    )
    assert verify_code(tests, "```python\ndef pair(a, b):\n    return (a, b)\n```", QUICK).ok
    solution_class = (
        "```python\nclass Solution:\n    def pair(self, a, b):\n        return [a, b]\n```"
    )
    assert verify_code(tests, solution_class, QUICK).ok  # LiveCodeBench's form
    # An object equal to everything cannot pass: only plain data leaves the sandbox.
    cheat = (
        "```python\nclass E:\n    def __eq__(self, o):\n        return True\n\n"
        "def pair(a, b):\n    return E()\n```"
    )
    v = verify_code(tests, cheat, QUICK)
    assert v.verdict == "failed_tests" and "repr" in v.first_failure["got"]
    # A call that changes its arguments does not change the next test's.
    mutating = read_tests(
        {
            "shape": "call",
            "entry_point": "grow",
            "tests": [{"args": [[1]], "expected": 2}, {"args": [[1]], "expected": 2}],
        }
    )
    assert verify_code(
        mutating, "```python\ndef grow(a):\n    a.append(1)\n    return len(a)\n```", QUICK
    ).ok


def test_apps_style_values_may_match_a_one_element_expected_list():
    spec = {"shape": "call", "entry_point": "f", "tests": [{"args": [2], "expected": [4]}]}
    program = "```python\ndef f(x):\n    return x * 2\n```"
    assert not verify_code(read_tests(spec), program, QUICK).ok
    assert verify_code(read_tests({**spec, "unwrap": True}), program, QUICK).ok


def test_script_tests_complete_a_prompt_or_take_a_whole_function():
    tests = read_tests(
        {
            "shape": "script",
            "entry_point": "double",
            "prompt": "from typing import List\n\n\ndef double(xs: List[int]) -> List[int]:\n"
            '    """Each number twice as large."""\n',
            "tests": [
                {"code": "assert double([1, 2]) == [2, 4]"},
                {"code": "assert double([]) == []"},
            ],
        }
    )
    body = "    return [2 * x for x in xs]\n"
    whole = "def double(xs: List[int]) -> List[int]:\n    return [x + x for x in xs]\n"
    assert program_of(tests, body).startswith("from typing import List")
    assert program_of(tests, whole) == "from typing import List\n" + whole  # imports kept
    assert verify_code(tests, body, CodeOptions(extract="whole")).ok
    assert verify_code(tests, f"```python\n{whole}```", QUICK).ok
    wrong_program = "```python\ndef double(xs):\n    return xs\n```"
    wrong = verify_code(tests, wrong_program, QUICK)
    assert (wrong.verdict, wrong.passed) == ("failed_tests", 0)  # stopped at the first
    every = verify_code(tests, wrong_program, CodeOptions(early_stop=False))
    assert (every.verdict, every.passed) == ("failed_tests", 1)


def test_records_written_by_the_program_itself_count_for_nothing():
    genuine = b'{"compile": "ok"}\n{"i": 0, "status": "ok", "output": "5"}\n'
    assert _records(genuine) == (
        {"compile": {"compile": "ok"}, 0: json.loads(genuine.split(b"\n")[1])},
        False,
    )
    forged = genuine + b'{"i": 0, "status": "ok", "output": "5"}\n{"i": 1, "status": "ok"}\n'
    records, tampered = _records(forged)
    assert tampered and 1 not in records
    # A program that writes a record for the next test before the harness does:
    program = (
        "import os\nfor fd in range(3, 64):\n    try:\n"
        '        os.write(fd, b\'{"i": 1, "status": "ok", "output": "3"}\\n\')\n'
        "    except OSError:\n        pass\n"
        "a, b = map(int, input().split())\nprint(a + b)\n"
    )
    v = verify_code(ADD, f"```python\n{program}```", QUICK)
    assert v.verdict == "runtime_error" and "harness" in v.detail


def test_many_programs_are_judged_in_one_batch_in_order():
    programs = [
        "a, b = map(int, input().split())\nprint(a + b)\n",
        "print(0)\n",
        "raise SystemExit(1)\n",
        "no code here",
    ]
    texts = [f"```python\n{p}```" for p in programs[:3]] + [programs[3]]
    verdicts = verify_many([(ADD, t) for t in texts], CodeOptions(timeout_s=1.5, workers=2))
    assert [v.verdict for v in verdicts] == ["passed", "failed_tests", "runtime_error", "no_code"]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"shape": "stdin", "tests": [{}]}, "field 'shape'"),
        ({"shape": "stdio", "tests": []}, "field 'tests'"),
        ({"shape": "stdio", "tests": [{"input": "1"}]}, "item 0"),
        ({"shape": "call", "tests": [{"args": [1], "expected": 1}]}, "field 'entry_point'"),
        ({"shape": "stdio", "tests": [{"input": 1, "output": "1"}]}, "must be text"),
        (
            {"shape": "stdio", "tests": [{"input": "1", "output": "1"}], "compare": "loose"},
            "compare",
        ),
    ],
)
def test_a_bad_test_spec_names_its_field(spec, error):
    with pytest.raises(ValueError, match=error):
        read_tests(spec)
