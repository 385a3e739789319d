"""Run one program against its tests inside the sandbox; report what it did, not a verdict.

Imported by `sandbox_child.py` (standard library only, no project import) for a job of kind
`tests`, after the child has confined itself. One process runs every test of one program, as
APPS' and LiveCodeBench's own runners do: starting a sandbox per test would cost more than
the tests. Shapes:
- `stdio`: the program runs once per test, as `__main__`, with the test's input on file
  descriptor 0 (so `input()`, `sys.stdin.buffer` and `open(0)` all read it) and its output
  taken from file descriptor 1; the record holds the output.
- `call`: the program runs once, then its function `entry_point` (or `Solution().NAME`,
  LiveCodeBench's form) is called once per test with the test's arguments; the record holds
  the return value as plain data (only exact bools, ints, floats, strings, lists, tuples and
  string-keyed dicts; anything else becomes its repr, which equals no expected value).
- `script`: the program runs once, then each test's code (HumanEval's `check(candidate)`,
  an MBPP `assert`) runs in a copy of its namespace; the record says whether it raised.
Expected outputs never enter the sandbox: the parent compares (`code_tests.py`), so a
program cannot read or fake them. A script test cannot be judged from outside the process
that runs it: a program written to fool the harness can pass one (said in README).

Each test has a wall-clock timer (`setitimer`); a program that blocks the timer is killed by
the parent's overall deadline, which the parent then charges to the test without a record.
Records are JSON lines on `results_fd`: first `{"compile": "ok"}` (or the syntax error),
then one per test `{"i", "status": ok|failed|error|timeout|memory, "output"|"value",
"detail", "seconds"}`.
"""

import builtins
import contextlib
import io
import json
import math
import os
import signal
import sys
import time
import traceback


class TestTimeout(BaseException):
    """Raised by the per-test timer (a BaseException: `except Exception` does not catch it)."""


def _alarm(signum, frame):
    raise TestTimeout


def run_tests(job: dict, results_fd: int, work: str) -> int:
    signal.signal(signal.SIGALRM, _alarm)
    emit = _writer(results_fd)
    try:
        program = compile(job["program"], "<solution>", "exec")
    except SyntaxError as exc:
        emit({"compile": "syntax_error", "detail": f"{exc.msg} (line {exc.lineno})"})
        return 0
    except (ValueError, MemoryError, RecursionError) as exc:
        emit({"compile": "syntax_error", "detail": _one_line(exc)})
        return 0
    emit({"compile": "ok"})
    limit = float(job["per_test_seconds"])
    shape = job["shape"]
    max_output = int(job.get("max_output", 1 << 20))
    if shape == "stdio":
        cases = (lambda t: _stdio(program, t["input"], work, max_output), job["tests"])
    else:
        with _quiet(work):
            namespace = {"__name__": "__main__", "__builtins__": builtins}
            setup = _timed(lambda: exec(program, namespace), limit)  # noqa: S102
            if setup["status"] == "ok" and job.get("setup"):
                code = compile(job["setup"], "<setup>", "exec")
                setup = _timed(lambda: exec(code, namespace), limit)  # noqa: S102
        if setup["status"] != "ok":  # the program itself fails: every test sees it
            setup["detail"] = "while loading the program: " + setup.get("detail", "")
            for i in range(len(job["tests"])):
                emit({"i": i, **setup})
                if job.get("early_stop", True):
                    break
            return 0
        if shape == "call":
            cases = (lambda t: _call(namespace, job["entry_point"], t["args"]), job["tests"])
        else:
            cases = (lambda t: _script(namespace, t["code"]), job["tests"])
    run, tests = cases
    for i, test in enumerate(tests):
        with _quiet(work) if shape != "stdio" else contextlib.nullcontext():
            record = _timed(lambda t=test: run(t), limit)
        emit({"i": i, **record})
        if record["status"] != "ok" and job.get("early_stop", True):
            break
    return 0


def _writer(fd: int):
    dumps, write = json.dumps, os.write

    def emit(record: dict) -> None:
        data = (dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode()
        while data:
            data = data[write(fd, data) :]

    return emit


def _timed(fn, limit: float) -> dict:
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        out = fn() or {}
        status, detail = "ok", None
    except TestTimeout:
        out, status, detail = {}, "timeout", f"ran past {limit:g} s"
    except MemoryError:
        out, status, detail = {}, "memory", "MemoryError"
    except AssertionError as exc:
        out, status, detail = {}, "failed", _one_line(exc) or "AssertionError"
    except SystemExit as exc:
        ok = exc.code in (None, 0)
        out, status, detail = {}, "ok" if ok else "error", None if ok else f"exit({exc.code!r})"
    except BaseException as exc:  # anything the program raised is its runtime error
        out, status, detail = {}, "error", _one_line(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    record = {"status": status, "seconds": round(time.perf_counter() - started, 4), **out}
    if status == "ok" and "error" in out:  # the value could not be read back
        record["status"], detail = "error", out.pop("error")
    if detail:
        record["detail"] = detail[:500]
    return record


def _one_line(exc: BaseException) -> str:
    # No source lines: looking them up would open files the sandbox may not read.
    where = [
        f"{frame.f_code.co_filename} line {lineno}"
        for frame, lineno in traceback.walk_tb(exc.__traceback__)
        if frame.f_code.co_filename.startswith("<")
    ]
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text + (f" ({where[-1]})" if where else "")


def _stdio(program, data: str, work: str, max_output: int) -> dict:
    stdin_path, stdout_path = os.path.join(work, ".stdin"), os.path.join(work, ".stdout")
    with open(stdin_path, "w", encoding="utf-8") as f:
        f.write(data)
    saved = os.dup(0), os.dup(1)
    inp = os.open(stdin_path, os.O_RDONLY)
    out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(inp, 0)
    os.dup2(out, 1)
    os.close(inp)
    os.close(out)
    real = sys.stdin, sys.stdout
    sys.stdin = _text(0, "r")
    sys.stdout = _text(1, "w")
    try:
        try:
            exec(program, {"__name__": "__main__", "__builtins__": builtins})  # noqa: S102
        except SystemExit as exc:  # exit() at the end of a program is a normal end
            if exc.code not in (None, 0):
                raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # no timeout while the streams are restored
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdin, sys.stdout = real
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        os.close(saved[0])
        os.close(saved[1])
    with open(stdout_path, "rb") as f:
        raw = f.read(max_output + 1)
    return {"output": raw.decode("utf-8", "replace"), "truncated": len(raw) > max_output}


def _text(fd: int, mode: str):
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding="utf-8")


def _call(namespace: dict, entry: str, args_json: str) -> dict:
    fn = namespace.get(entry)
    if not callable(fn):
        cls = namespace.get("Solution")
        if cls is None or not callable(getattr(cls, entry, None)):
            raise NameError(f"the program defines no function {entry!r}")
        fn = getattr(cls(), entry)
    args = json.loads(args_json)  # fresh objects per test: a call may change its arguments
    value = fn(*args)
    try:
        return {"value": _plain(value, 0)}
    except (ValueError, RecursionError) as exc:
        return {"error": f"the return value cannot be read: {exc}"}


def _plain(value, depth: int):
    if depth > 64:
        raise ValueError("nested more than 64 deep")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if kind in (list, tuple):
        return [_plain(v, depth + 1) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {"dict": {k: _plain(v, depth + 1) for k, v in value.items()}}
    return {"repr": repr(value)[:200]}


def _script(namespace: dict, code: str) -> dict:
    exec(compile(code, "<test>", "exec"), dict(namespace))  # noqa: S102
    return {}


@contextlib.contextmanager
def _quiet(work: str):
    """Output of `call` and `script` programs is not the answer: it goes to a scratch file."""
    path = os.path.join(work, ".stdout")
    saved = os.dup(1)
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.close(out)
    real = sys.stdout
    sys.stdout = _text(1, "w")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout = real
        os.dup2(saved, 1)
        os.close(saved)
        with contextlib.suppress(OSError):
            os.truncate(path, 0)
