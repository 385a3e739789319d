"""Code problems from the common dataset shapes: a question and the tests that judge it.

`code_problem(record)` reads one record (a JSONL line, a Parquet or `datasets` row) in one of
these shapes (`detect_shape` tells which) and returns what the `problems` row needs:
- `humaneval`: `prompt`, `entry_point`, `test` (`def check(candidate)`) -> one `script` test,
  `check(ENTRY)`; the prompt is what a solution may complete;
- `mbpp`: `text` (or `prompt`), `test_list` (assert lines), `test_setup_code` or
  `test_imports` -> one `script` test per assert;
- `apps` (APPS, TACO): `question`, `input_output` (`inputs`, `outputs`, `fn_name`?) ->
  `stdio` tests, or `call` tests of `fn_name` (a one-element expected list may also match
  its element, as APPS' own checker allows); compared `float`;
- `livecodebench`: `question_content`, `public_test_cases`, `private_test_cases`,
  `metadata` (`func_name`) -> `stdio` tests (compared `float`) or `call` tests of
  `Solution().NAME` (compared `exact`); the first `public` tests are the public ones;
- `tests` (ours): `question`, `tests` = [{input, output}] (stdio), [{args, expected}] with
  `entry_point` (call) or [{code}] (script), `compare` (default `whitespace`).
The question a model sees says what to write (a program reading standard input, or the named
function). The gold is `tests:` + a digest of the tests, so tests that change (a corrected
file) make a new gold and their traces are judged again, as a changed answer would be; the
tests themselves are stored in `meta.code` and `meta.checker` is `code`.

LiveCodeBench compresses its private tests (base64, zlib, then Python's pickle of a JSON
string): they are unpickled with no class allowed, so only plain strings, lists and numbers
can come out; nothing in the file can run.

Not here: running the tests (`generators.verify.code_tests`).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zlib

from reasonfactory.generators.verify.code_tests import CodeTests, read_tests
from reasonfactory.warehouse.ids import digest

SHAPES = ("humaneval", "mbpp", "livecodebench", "apps", "tests")
STDIO_HINT = "Read the input from standard input and print the answer to standard output."


class CodeProblemError(ValueError):
    """A record that claims a code shape but cannot be read as one (the message names the
    field; the caller adds the file and line)."""


def detect_shape(record: dict) -> str | None:
    """The code shape a record is in, or None (not a code problem).

    >>> detect_shape({"prompt": "def f():", "entry_point": "f", "test": "def check(c): pass"})
    'humaneval'
    >>> detect_shape({"question": "1 + 1?", "answer": "2"}) is None
    True
    """
    keys = {k for k, v in record.items() if v is not None}  # a Parquet file's null columns
    if {"prompt", "entry_point", "test"} <= keys:
        return "humaneval"
    if "test_list" in keys and keys & {"text", "prompt"}:
        return "mbpp"
    if {"question_content", "public_test_cases"} <= keys:
        return "livecodebench"
    if {"question", "input_output"} <= keys:
        return "apps"
    if {"question", "tests"} <= keys:
        return "tests"
    return None


def code_problem(record: dict, shape: str | None = None) -> tuple[str, CodeTests, set[str]]:
    """(question, tests, the record's fields they were read from) for one record."""
    shape = shape or detect_shape(record)
    if shape not in SHAPES:
        raise CodeProblemError(
            "not a code problem in any known shape (HumanEval: prompt, entry_point, test; "
            "MBPP: text, test_list; APPS/TACO: question, input_output; LiveCodeBench: "
            "question_content, public_test_cases; ours: question, tests); fields present: "
            + (", ".join(sorted(record)) or "none")
        )
    return _READERS[shape](record)


def code_meta(shape: str, tests: CodeTests) -> dict:
    """What a code problem's row carries in `meta` besides the record's other fields."""
    return {"family": "code", "format": shape, "checker": "code", "code": tests.to_json()}


def code_gold(tests: CodeTests) -> str:
    """`tests:` and a digest of the tests: changes exactly when the tests change.

    >>> code_gold(read_tests({"shape": "script", "tests": [{"code": "assert 1"}]}))[:6]
    'tests:'
    """
    return "tests:" + digest(json.dumps(tests.to_json(), sort_keys=True), length=16)


def _text(record: dict, name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CodeProblemError(f"field {name!r} is missing, empty or not text")
    return value


def _json_field(record: dict, name: str):
    value = record.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise CodeProblemError(f"field {name!r} is text but not JSON") from None
    return value


def _humaneval(record: dict):
    prompt, entry, test = (_text(record, k) for k in ("prompt", "entry_point", "test"))
    if not entry.isidentifier():
        raise CodeProblemError(f"field 'entry_point' is {entry!r}, not a function name")
    tests = CodeTests("script", ({"code": f"{test}\n\ncheck({entry})\n"},), entry, prompt)
    question = (
        f"Write the Python function `{entry}` below: complete its body (the signature and "
        f"docstring are given).\n\n```python\n{prompt.rstrip()}\n```"
    )
    return question, tests, {"prompt", "entry_point", "test"}


_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_BUILTINS = {"set", "sorted", "list", "tuple", "abs", "round", "str", "int", "float", "math"}


def _mbpp(record: dict):
    text = record.get("text") if isinstance(record.get("text"), str) else record.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise CodeProblemError("field 'text' (or 'prompt') is missing, empty or not text")
    asserts = record.get("test_list")
    if not isinstance(asserts, list) or not asserts or not all(isinstance(a, str) for a in asserts):
        raise CodeProblemError("field 'test_list' must be a non-empty list of assert lines")
    setup = record.get("test_setup_code") or ""
    imports = record.get("test_imports") or []
    if not isinstance(setup, str) or not isinstance(imports, list):
        raise CodeProblemError("field 'test_setup_code' must be text, 'test_imports' a list")
    setup = "\n".join([*map(str, imports), setup]).strip()
    called = [n for n in _CALLED.findall(asserts[0]) if n not in _BUILTINS and n != "assert"]
    entry = called[0] if called else None
    tests = CodeTests("script", tuple({"code": a} for a in asserts), entry, "", setup)
    question = text.strip() + "\nYour code should pass these tests:\n\n" + "\n".join(asserts)
    used = {"text", "prompt", "test_list", "test_setup_code", "test_imports"}
    return question, tests, used


def _apps(record: dict):
    question = _text(record, "question")
    io_ = _json_field(record, "input_output")
    if not isinstance(io_, dict) or not isinstance(io_.get("inputs"), list):
        raise CodeProblemError("field 'input_output' must hold inputs and outputs lists")
    inputs, outputs = io_["inputs"], io_.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != len(inputs) or not inputs:
        raise CodeProblemError(
            "field 'input_output': inputs and outputs are empty or differ in length"
        )
    starter = record.get("starter_code") or ""
    fn = io_.get("fn_name")
    if fn:
        spec = {
            "shape": "call",
            "entry_point": fn,
            "tests": [
                {"args": a if isinstance(a, list) else [a], "expected": o}
                for a, o in zip(inputs, outputs, strict=True)
            ],
            "compare": "float",
            "unwrap": True,
        }
        hint = f"Write the Python function `{fn}`."
    else:
        spec = {
            "shape": "stdio",
            "tests": [
                {"input": _lines(a), "output": _lines(o)}
                for a, o in zip(inputs, outputs, strict=True)
            ],
            "compare": "float",
        }
        hint = STDIO_HINT
    tests = _checked(spec, "input_output")
    if starter.strip():
        hint += f" Start from:\n\n```python\n{starter.rstrip()}\n```"
    return f"{question.rstrip()}\n\n{hint}", tests, {"question", "input_output"}


def _lines(value) -> str:
    if isinstance(value, list):
        return "\n".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value)


def _livecodebench(record: dict):
    question = _text(record, "question_content")
    public = _lcb_cases(record, "public_test_cases")
    private = _lcb_cases(record, "private_test_cases") if record.get("private_test_cases") else []
    cases = public + private
    if not cases:
        raise CodeProblemError("field 'public_test_cases' holds no test")
    kinds = {c.get("testtype", "stdin") for c in cases}
    meta = _json_field(record, "metadata") or {}
    starter = record.get("starter_code") or ""
    if kinds == {"functional"}:
        fn = meta.get("func_name") if isinstance(meta, dict) else None
        if not fn:
            raise CodeProblemError("field 'metadata' has no func_name for functional tests")
        try:
            tests = [
                {
                    "args": [json.loads(line) for line in c["input"].split("\n") if line.strip()],
                    "expected": json.loads(c["output"]),
                }
                for c in cases
            ]
        except (ValueError, KeyError, AttributeError):
            raise CodeProblemError("a functional test's input or output is not JSON") from None
        spec = {"shape": "call", "entry_point": fn, "tests": tests, "compare": "exact"}
        hint = f"Write the method `{fn}` of class `Solution`."
    elif kinds == {"stdin"}:
        tests = [{"input": c.get("input"), "output": c.get("output")} for c in cases]
        spec = {"shape": "stdio", "tests": tests, "compare": "float"}
        hint = STDIO_HINT
    else:
        raise CodeProblemError(f"test types {sorted(kinds)}: expected all stdin or all functional")
    spec["public"] = len(public)
    if starter.strip():
        hint += f" Start from:\n\n```python\n{starter.rstrip()}\n```"
    tests_ = _checked(spec, "public_test_cases")
    return (
        f"{question.rstrip()}\n\n{hint}",
        tests_,
        {
            "question_content",
            "public_test_cases",
            "private_test_cases",
        },
    )


def _lcb_cases(record: dict, name: str) -> list[dict]:
    value = record.get(name)
    if isinstance(value, list):
        cases = value
    elif isinstance(value, str):
        try:
            cases = json.loads(value)
        except ValueError:
            cases = json.loads(_unpickle_text(value, name))
    else:
        raise CodeProblemError(f"field {name!r} must be a JSON list of tests")
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise CodeProblemError(f"field {name!r} must be a list of {{input, output}} objects")
    return cases


class _NoClasses(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _unpickle_text(value: str, name: str) -> str:
    """LiveCodeBench's compressed tests: base64 -> zlib -> a pickled JSON string, unpickled
    with no class allowed (only plain values can come out; nothing in the file runs)."""
    try:
        raw = zlib.decompress(base64.b64decode(value, validate=True))
        text = _NoClasses(io.BytesIO(raw)).load()
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError, TypeError):
        raise CodeProblemError(
            f"field {name!r} is neither JSON nor LiveCodeBench's compressed form"
        ) from None
    if not isinstance(text, str):
        raise CodeProblemError(f"field {name!r}: the compressed tests are not a JSON string")
    return text


def _tests(record: dict):
    question = _text(record, "question")
    given = _json_field(record, "tests")
    if not isinstance(given, list) or not given or not isinstance(given[0], dict):
        raise CodeProblemError("field 'tests' must be a non-empty list of test objects")
    first = given[0]
    shape = "stdio" if "input" in first else "call" if "args" in first else "script"
    spec = {"shape": shape, "tests": given, "compare": record.get("compare") or "whitespace"}
    for name in ("entry_point", "prompt", "setup"):
        if record.get(name):
            spec[name] = record[name]
    tests = _checked(spec, "tests")
    hint = STDIO_HINT if shape == "stdio" else f"Write the Python function `{tests.entry_point}`."
    if shape == "script":
        hint = "Write Python code that passes the tests."
    used = {"question", "tests", "compare", "entry_point", "prompt", "setup"}
    return f"{question.rstrip()}\n\n{hint}", tests, used


def _checked(spec: dict, field: str) -> CodeTests:
    try:
        return read_tests(spec)
    except ValueError as exc:
        raise CodeProblemError(f"field {field!r}: {exc}") from None


_READERS = {
    "humaneval": _humaneval,
    "mbpp": _mbpp,
    "apps": _apps,
    "livecodebench": _livecodebench,
    "tests": _tests,
}


def code_row(record: dict, shape: str | None, source: str) -> dict:
    """A `problems` row for a code record (problem_id, source, question, gold, meta): the
    record's other fields stay in `meta`, beside `code_meta`."""
    from datetime import UTC, datetime

    from reasonfactory.warehouse.ids import problem_id

    shape = shape or detect_shape(record)
    question, tests, used = code_problem(record, shape)
    meta = {k: v for k, v in record.items() if k not in used}
    meta["imported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta |= code_meta(shape, tests)
    return {
        "problem_id": problem_id(source, question),
        "source": source,
        "question": question,
        "gold": code_gold(tests),
        "meta": json.dumps(meta, default=str, ensure_ascii=False),
    }
