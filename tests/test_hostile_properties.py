"""Property-based (hypothesis): any recipe text and any problem file either loads or is one
named `UserError` (naming the file); never another exception, never a partial store, and
each case in bounded time and memory."""

from __future__ import annotations

import contextlib
import json
import resource
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reasonfactory.flows.recipe import load_recipe
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse

pytestmark = pytest.mark.slow  # ~40 s: 240 cases

CASES = settings(
    max_examples=120,
    deadline=timedelta(seconds=5),  # per case: a hang or a blow-up fails it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same cases every run (CI is not a fuzzing farm)
)

# Values a recipe key might get: plausible ones, wrong types, huge and odd numbers, text.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["builtin:arithmetic", "builtin:linear", "sim", "tree", "distill", "1e9"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = {
    "name": st.text(max_size=10),
    "problems": st.fixed_dictionaries(
        {"source": st.sampled_from(["builtin:arithmetic", "builtin:countdown", "x.jsonl"])},
        optional={
            "limit": values,
            "difficulty": values,
            "seed": values,
            "answer_format": values,
            "fields": values,
        },
    ),
    "engine": st.fixed_dictionaries(
        {}, optional={"kind": st.sampled_from(["sim", "openai", "x"]), "error_rate": values}
    ),
    "generate": st.fixed_dictionaries(
        {},
        optional={
            "method": st.sampled_from(["self_output", "tree", "distill", "x"]),
            "samples": values,
            "temperature": values,
            "max_tokens": values,
            "sandbox": values,
        },
    ),
    "filters": values,
}
recipes = st.fixed_dictionaries({}, optional={**KEYS, "junk": values})


def _yaml_text(data) -> str:
    # JSON is YAML; non-finite floats are written the YAML way.
    text = json.dumps(data, allow_nan=True)
    return text.replace("NaN", ".nan").replace("-Infinity", "-.inf").replace("Infinity", ".inf")


def _check_error(exc: UserError, path: Path) -> None:
    message = str(exc)
    assert str(path) in message, message
    assert len(message) < 2000, message[:200]  # never the repr of a huge value


def _bounded_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB


@pytest.fixture(scope="module")
def memory_guard():
    yield from _bounded_memory()


@CASES
@given(
    data=recipes,
    mangle=st.one_of(
        st.none(),
        st.binary(max_size=20),
        st.sampled_from([b"\xff\xfe", b"&a [1]\n", b"*a", b"\xef\xbb\xbf", b"{{{{", b"\x00"]),
    ),
)
def test_any_recipe_loads_or_is_one_named_error(memory_guard, data, mangle):
    raw = _yaml_text(data).encode()
    if mangle is not None:
        cut = len(raw) // 2
        raw = raw[:cut] + mangle + raw[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_bytes(raw)
        try:
            recipe = load_recipe(path)
        except UserError as exc:
            _check_error(exc, path)
            return
        # A recipe that loads builds its problems (small: the limit is capped by the test).
        if recipe.problems.source.startswith("builtin:"):
            with contextlib.suppress(UserError):
                load_problems(
                    recipe.problems.source,
                    limit=min(recipe.problems.limit or 5, 50),
                    seed=recipe.problems.seed,
                    difficulty=recipe.problems.difficulty,
                )


records = st.one_of(
    st.dictionaries(st.sampled_from(["question", "answer", "other"]), values, max_size=3),
    values,
)
lines = st.one_of(
    records.map(lambda r: json.dumps(r, allow_nan=True).encode()),
    st.binary(max_size=40),
    st.sampled_from(
        [
            b'{"question": "q\\ud800", "answer": "1"}',
            b'{"question": "What is 1+1?", "answer": "2"}',
            b'{"question": "What is 1+1?", "answer": "3"}',
            b"[" * 5000 + b"]" * 5000,
            b'{"question": "q", "answer": "' + b"\\\\boxed{" * 2000 + b'"}',
        ]
    ),
)


@CASES
@given(
    body=st.lists(lines, min_size=1, max_size=6),
    answer_format=st.sampled_from(["plain", "boxed", "gsm8k"]),
    bom=st.booleans(),
)
def test_any_problem_file_imports_whole_or_not_at_all(memory_guard, body, answer_format, bom):
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(body) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.jsonl"
        path.write_bytes(raw)
        with Warehouse(Path(tmp) / "wh.duckdb") as wh:
            try:
                problems = load_problems(str(path), answer_format=answer_format)
            except UserError as exc:
                _check_error(exc, path)
                assert wh.count("problems") == 0  # nothing stored from a bad file
                return
            assert wh.ingest("problems", problems) == problems.height
            assert wh.count("problems") == problems.height
