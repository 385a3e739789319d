"""Judge a program by its tests, run in the sandbox: `verify_code(tests, text) -> CodeVerdict`.

The one place a code answer is judged: the `answer` filter, `reasonfactory check code`,
selection (`best_of_n` by pass rate), eval and the RL rewards all call it. A problem's tests
are a `CodeTests` (stored as `problems.meta.code`, read by `read_tests`) in one of three
shapes: `stdio` (input -> expected output), `call` (arguments -> expected return value of
`entry_point`), `script` (code that must run without raising, e.g. HumanEval's
`check(candidate)` or an MBPP `assert`).

How a verdict is reached:
1. the answer is the last fenced code block of the text after `</think>` (`code_extract.py`;
   a ```python block wins over an untagged one; `extract` changes it);
2. one sandboxed process runs the program against every test (`sandbox_harness.py`), each
   test under its own time limit, stopping at the first test that errors or times out
   (`early_stop`); the run's memory is capped;
3. outputs and return values are compared here, outside the sandbox, with the problem's
   `compare` mode (`code_compare.py`), so a program never sees an expected output.
Verdicts: `passed`; `failed_tests` (how many of how many passed, the first failing case's
input, expected and got); `runtime_error`; `timeout`; `memory`; `no_code` (no code block);
`syntax_error`. The first failing test decides which. Many programs run at once through
`verify_many`, `workers` sandboxes at a time.
"""

from __future__ import annotations

import ast
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from reasonfactory.generators.verify.code_compare import CompareMode, same_output, same_value
from reasonfactory.generators.verify.code_extract import Extract, extract_code
from reasonfactory.generators.verify.sandbox import Limits, run_job

Shape = Literal["stdio", "call", "script"]
VERDICTS = (
    "passed",
    "failed_tests",
    "runtime_error",
    "timeout",
    "memory",
    "no_code",
    "syntax_error",
)
SHOWN_CHARS = 300  # input, expected and got of a failing case are cut to this


@dataclass(frozen=True)
class CodeTests:
    """A problem's tests. `prompt`: code a solution may complete (HumanEval's signature and
    docstring; prepended when the solution does not define `entry_point`); `setup`: run
    after the program, before the tests (MBPP's `test_setup_code`); `unwrap`: a `call`
    value may also equal the only element of a one-element expected list (APPS)."""

    shape: Shape
    tests: tuple[dict, ...]
    entry_point: str | None = None
    prompt: str = ""
    setup: str = ""
    compare: CompareMode = "whitespace"
    unwrap: bool = False
    public: int | None = None  # the first `public` tests are the ones the statement shows

    def to_json(self) -> dict:
        """The stored form (`problems.meta.code`), which `read_tests` reads back."""
        out = {"shape": self.shape, "tests": list(self.tests), "compare": self.compare}
        for name in ("entry_point", "prompt", "setup", "unwrap", "public"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


@dataclass(frozen=True)
class CodeOptions:
    """How programs are run (the `answer` filter's `code:` options carry them)."""

    timeout_s: float = 4.0  # wall-clock limit per test
    memory_mb: int = 1024  # address space of the run
    early_stop: bool = True  # stop at the first test that errors or times out
    extract: Extract = "last_block"
    workers: int | None = None  # sandboxes at once (default: the machine's cores)
    allow_weak: bool = False  # run without bubblewrap/seccomp/a process cap
    processes: int = 0  # processes or threads a program may start
    max_output_bytes: int = 1 << 20  # per test; more is cut (and then differs)


@dataclass(frozen=True)
class CodeVerdict:
    verdict: str
    passed: int
    total: int
    detail: str = ""
    first_failure: dict | None = None  # {"test", "input", "expected", "got"}
    seconds: float = 0.0
    layers: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.verdict == "passed"

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        """The verdict as JSON-ready data (`check code` prints it; filters store it)."""
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "total": self.total,
            "detail": self.detail,
            "first_failure": self.first_failure,
            "seconds": round(self.seconds, 3),
            "sandbox": ", ".join(self.layers),
        }


def read_tests(spec: dict | str) -> CodeTests:
    """A stored or given test spec as `CodeTests`; a bad one is a `ValueError` naming the
    field.

    >>> read_tests({"shape": "stdio", "tests": [{"input": "1 2", "output": "3"}]}).compare
    'whitespace'
    """
    if isinstance(spec, str):
        spec = json.loads(spec)
    if not isinstance(spec, dict):
        raise ValueError("tests: expected an object with shape and tests")
    shape = spec.get("shape")
    if shape not in ("stdio", "call", "script"):
        raise ValueError(f"field 'shape' is {shape!r}; expected stdio, call or script")
    tests = spec.get("tests")
    if not isinstance(tests, list) or not tests:
        raise ValueError("field 'tests' must be a non-empty list")
    need = {"stdio": ("input", "output"), "call": ("args", "expected"), "script": ("code",)}
    for i, test in enumerate(tests):
        if not isinstance(test, dict) or any(k not in test for k in need[shape]):
            raise ValueError(f"field 'tests' item {i}: a {shape} test has {', '.join(need[shape])}")
        if shape == "stdio" and not all(isinstance(test[k], str) for k in need[shape]):
            raise ValueError(f"field 'tests' item {i}: input and output must be text")
        if shape == "call" and not isinstance(test["args"], list):
            raise ValueError(f"field 'tests' item {i}: args must be a list")
        if shape == "script" and not isinstance(test["code"], str):
            raise ValueError(f"field 'tests' item {i}: code must be text")
    entry = spec.get("entry_point")
    if shape == "call" and not (isinstance(entry, str) and entry.isidentifier()):
        raise ValueError(f"field 'entry_point' is {entry!r}; a call test names a function")
    compare = spec.get("compare", "whitespace")
    if compare not in ("exact", "whitespace", "float"):
        raise ValueError(f"field 'compare' is {compare!r}; expected exact, whitespace or float")
    for name in ("prompt", "setup"):
        if not isinstance(spec.get(name, ""), str):
            raise ValueError(f"field {name!r} must be text")
    return CodeTests(
        shape=shape,
        tests=tuple(tests),
        entry_point=entry,
        prompt=spec.get("prompt", ""),
        setup=spec.get("setup", ""),
        compare=compare,
        unwrap=bool(spec.get("unwrap", False)),
        public=spec.get("public"),
    )


def program_of(tests: CodeTests, code: str) -> str:
    """The program to run: the code, after the problem's `prompt` when the code completes it
    (defines no `entry_point`), or after the prompt's imports when it defines it itself."""
    if not tests.prompt or tests.shape == "stdio":
        return code
    if tests.entry_point and _defines(code, tests.entry_point):
        imports = _imports(tests.prompt)
        return (imports + "\n" + code) if imports else code
    return tests.prompt + code


def _defines(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
        for node in tree.body
    )


def _imports(prompt: str) -> str:
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    lines = prompt.splitlines()
    return "\n".join(
        "\n".join(lines[n.lineno - 1 : n.end_lineno])
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    )


def verify_code(
    tests: CodeTests, text: str | None, options: CodeOptions = CodeOptions()
) -> CodeVerdict:
    """Run the program in `text` against `tests` in the sandbox and judge it.

    >>> t = read_tests({"shape": "stdio", "tests": [{"input": "2 3", "output": "5"}]})
    >>> verify_code(t, "```python\\na, b = map(int, input().split())\\nprint(a + b)\\n```").verdict
    'passed'
    """
    total = len(tests.tests)
    code = extract_code(text, options.extract)
    if code is None or not code.strip():
        return CodeVerdict("no_code", 0, total, "no code block in the answer")
    job = {
        "kind": "tests",
        "shape": tests.shape,
        "program": program_of(tests, code),
        "setup": tests.setup,
        "entry_point": tests.entry_point,
        "per_test_seconds": options.timeout_s,
        "early_stop": options.early_stop,
        "max_output": options.max_output_bytes,
        "tests": [_sent(tests.shape, t) for t in tests.tests],
    }
    budget = options.timeout_s * total + 2.0  # per-test limits, plus start-up and loading
    limits = Limits(
        wall_seconds=budget + 3.0,
        cpu_seconds=int(budget) + 1,
        memory_mb=options.memory_mb,
        file_mb=max(8, 2 * options.max_output_bytes * (total + 1) // 2**20 + 1),
        processes=options.processes,
    )
    raw = run_job(job, limits, allow_weak=options.allow_weak, results=True)
    return judge_run(tests, raw, options)


def _sent(shape: str, test: dict) -> dict:
    # Only what the program needs: never the expected output.
    if shape == "stdio":
        return {"input": test["input"]}
    if shape == "call":
        return {"args": json.dumps(test["args"])}
    return {"code": test["code"]}


def judge_run(tests: CodeTests, raw, options: CodeOptions) -> CodeVerdict:
    """The verdict of one sandbox run from its records (`sandbox_harness.py`)."""
    total = len(tests.tests)
    records, tampered = _records(raw.results)
    common = {"seconds": raw.seconds, "layers": raw.layers}
    compiled = records.pop("compile", None)
    if compiled is not None and compiled.get("compile") == "syntax_error":
        return CodeVerdict("syntax_error", 0, total, compiled.get("detail", "")[:500], **common)
    passed, failure = 0, None
    for i, test in enumerate(tests.tests):
        record = records.get(i)
        if record is None:  # the run ended (or was ended) during this test
            kind, detail = _unrecorded(raw, options)
            if tampered:
                kind, detail = "runtime_error", "the program wrote to the test harness's records"
            failure = failure or (kind, i, detail, None)
            break
        kind, got = _judge_record(tests, test, record)
        if kind == "passed":
            passed += 1
        elif failure is None:
            failure = (kind, i, record.get("detail", ""), got)
    if failure is None:
        return CodeVerdict("passed", passed, total, f"{passed}/{total} tests passed", **common)
    kind, i, detail, got = failure
    shown = _shown_case(tests, i, got)
    words = {"failed_tests": "wrong output", "runtime_error": "error"}.get(kind, kind)
    detail = f"{passed}/{total} tests passed; test {i + 1}: {words}" + (
        f": {detail}" if detail else ""
    )
    denied = [line for line in raw.stderr.splitlines() if line.startswith("sandbox: denied ")]
    if denied:
        detail += "; " + "; ".join(denied[:3])
    return CodeVerdict(kind, passed, total, detail[:1000], shown, **common)


def _records(data: bytes) -> tuple[dict, bool]:
    """Records by test index ("compile" for the first), and whether the program wrote to the
    harness's channel (a record twice for a test, out of order, or not JSON): from there on
    no record counts."""
    out: dict = {}
    expected_next = 0
    tampered = False
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            tampered = True
            continue
        if not isinstance(record, dict):
            tampered = True
        elif "compile" in record and "compile" not in out and not out:
            out["compile"] = record
        elif record.get("i") == expected_next and not tampered:
            out[expected_next] = record
            expected_next += 1
        else:
            tampered = True
    return out, tampered


def _unrecorded(raw, options: CodeOptions) -> tuple[str, str]:
    code = raw.exit_code
    if raw.timed_out or code in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout", f"the run was stopped at its deadline ({options.timeout_s:g} s per test)"
    if code == 3 or "MemoryError" in raw.stderr:
        return "memory", "MemoryError"
    last = [line for line in raw.stderr.strip().splitlines() if line.strip()]
    if code is not None and code < 0:
        return "runtime_error", f"the interpreter died ({signal.Signals(-code).name})"
    why = last[-1][:300] if last else f"the program ended the interpreter (exit status {code})"
    return "runtime_error", why


def _judge_record(tests: CodeTests, test: dict, record: dict) -> tuple[str, object]:
    status = record.get("status")
    kinds = {"timeout": "timeout", "memory": "memory", "error": "runtime_error"}
    if status in kinds:
        return kinds[status], None
    if status == "failed":
        return "failed_tests", None
    if status != "ok":
        return "runtime_error", None
    if tests.shape == "stdio":
        got = record.get("output")
        ok = isinstance(got, str) and not record.get("truncated")
        ok = ok and same_output(got, test["output"], tests.compare)
        return ("passed" if ok else "failed_tests"), got
    if tests.shape == "call":
        got = record.get("value")
        expected = test["expected"]
        ok = same_value(got, expected, tests.compare)
        if not ok and tests.unwrap and isinstance(expected, list) and len(expected) == 1:
            ok = same_value(got, expected[0], tests.compare)
        return ("passed" if ok else "failed_tests"), got
    return "passed", None


def _shown_case(tests: CodeTests, i: int, got) -> dict:
    test = tests.tests[i]
    if tests.shape == "stdio":
        case = {"input": test["input"], "expected": test["output"]}
    elif tests.shape == "call":
        case = {"input": json.dumps(test["args"]), "expected": json.dumps(test["expected"])}
    else:
        case = {"input": test["code"], "expected": "no exception"}
    if got is not None:
        case["got"] = got if isinstance(got, str) else json.dumps(got)
    return {"test": i + 1, **{k: _cut(v) for k, v in case.items()}}


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def verify_many(
    items: list[tuple[CodeTests, str | None]], options: CodeOptions = CodeOptions()
) -> list[CodeVerdict]:
    """`verify_code` for many (tests, answer) pairs, `options.workers` sandboxes at a time
    (threads wait on the sandboxed processes); verdicts in order."""
    if not items:
        return []
    workers = min(len(items), options.workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: verify_code(item[0], item[1], options), items))
