"""`reasonfactory check code`: JSONL in (a problem in any shape, or a stored problem_id, and a
solution), one verdict per line out, through the code the `answer` filter runs; bad lines are
named and do not stop the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import write_jsonl
from reasonfactory.generators.verify.sandbox_layers import weak_layers

ADD = {"question": "Add two numbers.", "tests": [{"input": "2 3\n", "output": "5\n"}]}
HUMANEVAL = {
    "prompt": 'def add(x: int, y: int):\n    """Add x and y."""\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
}


@pytest.fixture(autouse=True)
def _strong_sandbox():
    if weak_layers():
        message = f"this machine's sandbox lacks {weak_layers()}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs bubblewrap)")
        pytest.skip(message)


def _reasonfactory(*args: str, stdin: str | None = None, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_check_code_gives_a_verdict_per_line_and_names_bad_ones(tmp_path):
    lines = [
        {"problem": ADD, "solution": "print(sum(map(int, input().split())))"},
        {"problem": ADD, "solution": "<think>easy</think>\n\n```python\nprint(6)\n```"},
        {"problem": HUMANEVAL, "solution": "    return x + y\n"},
        {"problem": ADD, "solution": "<think>I will not write code.</think> Done."},
        {"problem": {"shape": "stdio", "tests": ADD["tests"]}, "solution": "while True: pass"},
        {"problem": ADD},
        {"problem": {"question": "Add."}, "solution": "x"},
        "not json",
    ]
    path = write_jsonl(tmp_path / "code.jsonl", lines)
    proc = _reasonfactory("check", "code", str(path), "--timeout-s", "1", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # some lines had errors
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [v["verdict"] for v in out] == [
        "passed",
        "failed_tests",
        "passed",
        "no_code",
        "timeout",
        None,
        None,
        None,
    ]
    assert out[1]["first_failure"] == {"test": 1, "input": "2 3\n", "expected": "5\n", "got": "6\n"}
    assert out[0]["sandbox"].startswith("bwrap(")
    assert "line 6: field 'solution'" in out[5]["error"]
    assert "line 7: field 'problem': not a code problem" in out[6]["error"]
    assert "line 8: not valid JSON" in out[7]["error"]
    assert "checked 5 line(s)" in proc.stderr and "3 error(s)" in proc.stderr


def test_check_code_judges_a_stored_problem_by_its_id(tmp_path):
    problems = write_jsonl(tmp_path / "p.jsonl", [ADD])
    wh = str(tmp_path / "w.duckdb")
    assert _reasonfactory("import", str(problems), "-w", wh, cwd=tmp_path).returncode == 0
    query = _reasonfactory(
        "query", "-w", wh, "--format", "json", "SELECT problem_id FROM problems", cwd=tmp_path
    )
    pid = json.loads(query.stdout)[0]["problem_id"]
    stdin = json.dumps({"problem_id": pid, "solution": "```python\nprint(5)\n```"}) + "\n"
    stdin += json.dumps({"problem_id": "p_nope", "solution": "print(5)"}) + "\n"
    proc = _reasonfactory("check", "code", "-", "--warehouse", wh, stdin=stdin, cwd=tmp_path)
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert out[0]["verdict"] == "passed"
    assert "no stored code problem 'p_nope'" in out[1]["error"]
