"""`reasonfactory check steps|answers|code [FILE|-]`: the verifiers on lines a user gives.

JSONL in, one JSONL verdict out per line, through the same code the tree and the filters
run (`generators.verify.steps.check_equations`, `generators.verify.answer_pool`,
`generators.verify.code_tests`): a user
debugs a rejection by feeding it the step or the answer that was rejected. A line that is
over 1 MB, not UTF-8, not a JSON object (read as `import` reads lines: `problems.jsonl`),
lacks a field or names an unknown checker gets a verdict with `error` naming the file, the
line and the field; the other lines are still checked, and the exit status is 1 when any
line had an error.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import WarehouseOpt, app, err

check_app = typer.Typer(
    help="Check step claims or final answers given as JSONL (one verdict per line).",
    no_args_is_help=True,
)
app.add_typer(check_app, name="check")

FileArg = Annotated[str, typer.Argument(help="A .jsonl file, or - for standard input.")]


def _records(source: str) -> Iterator[tuple[int, dict | str]]:
    """`(line number, record)` per non-blank line, or `(line number, error)` for a line that
    is over the size cap, not UTF-8 or not a JSON object: read by `problems.jsonl`, the
    reader `import` uses. The error names the file (for a file) and the line."""
    from reasonfactory.generators.problems.jsonl import MAX_LINE_BYTES, read_jsonl

    if source == "-":
        stream = sys.stdin.buffer
    else:
        path = Path(source)
        if not path.is_file():
            from reasonfactory.warehouse.errors import UserError

            raise UserError(f"{source}: no such file")
        stream = path.open("rb")
    try:
        for number, record in read_jsonl(stream, lambda n: _where(source, n), MAX_LINE_BYTES):
            yield number, record if isinstance(record, dict) else str(record)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _fields(record: dict, where: str, fields: dict[str, bool]) -> str | None:
    """An error naming the line and the field, or None when the fields are text."""
    for field, required in fields.items():
        value = record.get(field)
        if value is None and not required:
            continue
        if not isinstance(value, str):
            what = "missing" if value is None else f"of type {type(value).__name__}, not a string"
            return f"{where}: field {field!r} is {what}"
    return None


# `countdown:4,6`: the one checker spec there is (generators/verify/checkers.py); its numbers
# and the target (the gold) must be integers the rule can read.
_COUNTDOWN = re.compile(r"countdown:[0-9]{1,15}(,[0-9]{1,15}){0,49}")
_TARGET = re.compile(r"-?[0-9]{1,15}")


def _checker_error(record: dict, where: str) -> str | None:
    checker = record.get("checker")
    if checker is None:
        return None
    if not _COUNTDOWN.fullmatch(checker):
        return (
            f"{where}: field 'checker' is {checker[:60]!r}; expected countdown:N,N,... "
            "(the numbers of a Countdown problem)"
        )
    if not _TARGET.fullmatch(record["gold"].strip()):
        return f"{where}: field 'gold' is {record['gold'][:60]!r}; a countdown target is an integer"
    return None


def _where(source: str, number: int) -> str:
    return f"line {number}" if source == "-" else f"{source} line {number}"


def _emit(verdict: dict) -> None:
    sys.stdout.write(json.dumps(verdict, ensure_ascii=False) + "\n")


def _finish(checked: int, errors: int, counts: dict) -> None:
    summary = ": " + ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else ""
    err.print(f"checked {checked} line(s){summary}; {errors} error(s)", highlight=False)
    if errors:
        raise typer.Exit(1)


@check_app.command("steps")
def steps(source: FileArg = "-") -> None:
    """Judge the arithmetic claims of steps: `{"text": ...}` per line.

    Out: `{"line", "ok", "claims": [{"written", "claim", "value", "stated", "approx",
    "holds"}], "claim", "expected", "detail"}`; `ok` is null when nothing is checkable.

    Example: echo '{"text": "She makes 9 * 2 = $17."}' | reasonfactory check steps -
    """
    from reasonfactory.generators.verify.steps import check_equations, read_claims

    counts = {"true": 0, "false": 0, "unverified": 0}
    checked = errors = 0
    for number, record in _records(source):
        error = (
            record
            if isinstance(record, str)
            else _fields(record, _where(source, number), {"text": True})
        )
        if error:
            errors += 1
            _emit({"line": number, "ok": None, "error": error})
            continue
        check = check_equations(record["text"])
        counts[{True: "true", False: "false", None: "unverified"}[check.ok]] += 1
        checked += 1
        _emit(
            {
                "line": number,
                "ok": check.ok,
                "claims": read_claims(record["text"]),
                "claim": check.claim,
                "expected": check.expected,
                "detail": check.detail,
            }
        )
    _finish(checked, errors, counts)


@check_app.command("answers")
def answers(
    source: FileArg = "-",
    approximate: Annotated[
        bool, typer.Option(help="A decimal may match an exact gold it rounds (sqrt(2), 1/3).")
    ] = False,
    timeout_s: Annotated[float, typer.Option(help="Wall-clock limit of one check.")] = 5.0,
    judge: Annotated[
        str | None,
        typer.Option(
            help="A recipe whose answer filter has a judge: it decides what rules cannot."
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Judge final answers: `{"gold": ..., "pred": ..., "answer_format"?: plain|boxed|gsm8k,
    "checker"?: "countdown:4,6"}` per line; `pred` may be a whole reply (its last
    `\\boxed{}` is read).

    Out: `{"line", "verdict": correct|wrong|gold_unparseable|timeout|error, "correct",
    "gold", "pred", "why"}`.

    With `--judge RECIPE` (its `answer: {judge: ...}`), an LLM decides what the rules cannot
    (an optional `question` field goes in its prompt); lines add `by` (rule | judge), `rule`
    and `judge`, and judgements are cached in the warehouse's completions.

    Example: echo '{"gold": "\\\\sqrt{2}", "pred": "1.414"}' | reasonfactory check answers -
    """
    from reasonfactory.generators.problems.sources import read_gold
    from reasonfactory.generators.verify.answer import Outcome
    from reasonfactory.generators.verify.answer_pool import PoolOptions, judge_answers_explained
    from reasonfactory.generators.verify.answers import extract_boxed

    fields = {"gold": True, "pred": True, "answer_format": False, "checker": False}
    fields["question"] = False
    judge_opts = None
    if judge is not None:
        from reasonfactory.flows.cli.check_judge import judge_options

        judge_opts = judge_options(judge)
    questions: dict[int, str | None] = {}
    rows: list[tuple[int, str | None, str | None, str | None] | tuple[int, str]] = []
    for number, record in _records(source):
        where = _where(source, number)
        error = record if isinstance(record, str) else _fields(record, where, fields)
        fmt = "plain" if error else record.get("answer_format") or "plain"
        if not error and fmt not in ("plain", "boxed", "gsm8k"):
            error = (
                f"{where}: field 'answer_format' is {fmt[:60]!r}; expected plain, boxed or gsm8k"
            )
        error = error or _checker_error(record, where)
        if error:
            rows.append((number, error))
            continue
        pred = record["pred"]
        pred = extract_boxed(pred) or pred.strip()
        questions[number] = record.get("question")
        rows.append((number, read_gold(record["gold"], fmt), pred, record.get("checker")))
    good = [r for r in rows if len(r) == 4]
    verdicts = iter(
        judge_answers_explained(
            [r[1] for r in good],
            [r[2] for r in good],
            [r[3] for r in good],
            PoolOptions(timeout_s=timeout_s, approximate=approximate),
        )
        if good
        else []
    )
    judged = iter([])
    if judge_opts is not None:
        from reasonfactory.flows.cli.check_judge import judge_lines, judged_verdict

        verdicts = list(verdicts)
        judged_rows, asked = judge_lines(
            [questions[r[0]] for r in good],
            [r[1] for r in good],
            [r[2] for r in good],
            [None if r[3] else o for r, (o, _) in zip(good, verdicts, strict=True)],
            judge_opts,
            warehouse,
        )
        judged, verdicts = iter(judged_rows), iter(verdicts)
    counts: dict[str, int] = {}
    errors = 0
    for row in rows:
        if len(row) == 2:
            errors += 1
            _emit({"line": row[0], "verdict": None, "error": row[1]})
            continue
        number, gold, pred, _ = row
        outcome, why = next(verdicts)
        correct = (
            outcome is Outcome.CORRECT if outcome in (Outcome.CORRECT, Outcome.WRONG) else None
        )
        line = {"verdict": outcome.value, "correct": correct}
        if judge_opts is not None:
            line = judged_verdict(outcome, next(judged))
        counts[line["verdict"]] = counts.get(line["verdict"], 0) + 1
        _emit(
            {
                "line": number,
                **line,
                "gold": gold,
                "pred": pred,
                "why": why if gold is not None else "no gold answer in that answer_format",
            }
        )
    if judge_opts is not None:
        counts["judge asked"], counts["judge cached"] = asked["asked"], asked["reused"]
    _finish(len(good), errors, counts)


@check_app.command("code")
def code(
    source: FileArg = "-",
    timeout_s: Annotated[float, typer.Option(help="Wall-clock limit per test.")] = 4.0,
    memory_mb: Annotated[int, typer.Option(help="Memory of one program's run.")] = 1024,
    extract: Annotated[
        str, typer.Option(help="The program: auto | last_block | first_block | whole.")
    ] = "auto",
    all_tests: Annotated[
        bool, typer.Option("--all-tests", help="Run every test, not stopping at an error.")
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Sandboxes at once.")] = None,
    allow_weak: Annotated[
        bool, typer.Option("--allow-weak", help="Run without bubblewrap/seccomp/a process cap.")
    ] = False,
    warehouse: Annotated[
        str | None, typer.Option(help="Warehouse of the stored problems `problem_id` names.")
    ] = None,
) -> None:
    """Run programs against tests in the sandbox: `{"problem": {...}, "solution": ...}` or
    `{"problem_id": ..., "solution": ...}` (a stored problem) per line. A problem is in any
    shape `import` reads (HumanEval, MBPP, APPS/TACO, LiveCodeBench, or `question` + `tests`)
    or the stored form (`shape`, `tests`); `solution` is a reply (its last code block after
    `</think>`) or a bare program.

    Out: `{"line", "verdict": passed|failed_tests|runtime_error|timeout|memory|no_code|
    syntax_error, "passed", "total", "detail", "first_failure", "seconds", "sandbox"}`.

    Example: echo '{"problem": {"question": "Add.", "tests": [{"input": "2 3", "output": "5"}]},
    "solution": "print(sum(map(int, input().split())))"}' | reasonfactory check code -
    """
    from reasonfactory.generators.verify.code_tests import CodeOptions, verify_many

    if extract not in ("auto", "last_block", "first_block", "whole"):
        from reasonfactory.warehouse.errors import UserError

        raise UserError(f"--extract {extract!r}: expected auto, last_block, first_block or whole")
    rows: list[tuple[int, object, str] | tuple[int, str]] = []
    stored: dict[str, str] = {}

    def lookup(pid: str) -> str | None:  # stored problems, read once, on first use
        if not stored:
            stored.update(_load_stored(warehouse) or {"": ""})
        return stored.get(pid)

    for number, record in _records(source):
        where = _where(source, number)
        if isinstance(record, str):
            rows.append((number, record))
            continue
        tests = _tests_of(record, where, lookup)
        if isinstance(tests, str):
            rows.append((number, tests))
            continue
        if not isinstance(record.get("solution"), str):
            rows.append((number, f"{where}: field 'solution' is missing or not a string"))
            continue
        rows.append((number, tests, record["solution"]))
    good = [r for r in rows if len(r) == 3]
    options = CodeOptions(
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        extract=extract,
        early_stop=not all_tests,
        workers=workers,
        allow_weak=allow_weak,
    )
    verdicts = iter(verify_many([(r[1], r[2]) for r in good], options))
    counts: dict[str, int] = {}
    errors = 0
    for row in rows:
        if len(row) == 2:
            errors += 1
            _emit({"line": row[0], "verdict": None, "error": row[1]})
            continue
        verdict = next(verdicts)
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
        _emit({"line": row[0], **verdict.to_dict()})
    _finish(len(good), errors, counts)


def _load_stored(warehouse: str | None) -> dict:
    """problem_id -> the stored tests of every code problem (read-only)."""
    from reasonfactory.warehouse.store import Warehouse, resolve_path

    if not resolve_path(warehouse).exists():
        return {}
    with Warehouse(warehouse, read_only=True) as wh:
        frame = wh.sql(
            "SELECT problem_id, meta->>'code' AS code FROM problems WHERE meta->>'checker' = 'code'"
        )
    return dict(frame.iter_rows())


def _tests_of(record: dict, where: str, lookup):
    """The line's tests, or an error naming the line and the field."""
    from reasonfactory.generators.problems.code import CodeProblemError, code_problem
    from reasonfactory.generators.verify.code_tests import read_tests

    if "problem_id" in record and "problem" not in record:
        pid = record["problem_id"]
        if not isinstance(pid, str):
            return f"{where}: field 'problem_id' is not a string"
        spec = lookup(pid)
        if not spec:
            return f"{where}: field 'problem_id': no stored code problem {pid[:40]!r}"
        return read_tests(spec)
    problem = record.get("problem")
    if not isinstance(problem, dict):
        return f"{where}: field 'problem' is missing or not an object (or give a problem_id)"
    try:
        if "shape" in problem and "tests" in problem:
            return read_tests(problem)
        return code_problem(problem)[1]
    except (CodeProblemError, ValueError) as exc:
        return f"{where}: field 'problem': {exc}"
