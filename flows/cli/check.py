"""`reasonfactory check steps|answers [FILE|-]`: the verifiers on lines a user gives.

JSONL in, one JSONL verdict out per line, through the same code the tree and the filters
run (`generators.verify.steps.check_equations`, `generators.verify.answer_pool`): a user
debugs a rejection by feeding it the step or the answer that was rejected. A line that is
not JSON or lacks a field gets a verdict with `error` naming the line and the field; the
other lines are still checked, and the exit status is 1 when any line had an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import app, err

check_app = typer.Typer(
    help="Check step claims or final answers given as JSONL (one verdict per line).",
    no_args_is_help=True,
)
app.add_typer(check_app, name="check")

FileArg = Annotated[str, typer.Argument(help="A .jsonl file, or - for standard input.")]


def _lines(source: str) -> Iterator[tuple[int, str]]:
    if source == "-":
        stream = sys.stdin
    else:
        path = Path(source)
        if not path.is_file():
            from reasonfactory.warehouse.errors import UserError

            raise UserError(f"{source}: no such file")
        stream = path.open(encoding="utf-8-sig")
    try:
        for number, line in enumerate(stream, 1):
            if line.strip():
                yield number, line
    finally:
        if stream is not sys.stdin:
            stream.close()


def _record(number: int, line: str, fields: dict[str, bool]) -> tuple[dict | None, str | None]:
    """The line's object, or an error naming the line and the field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"line {number}: not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return None, f"line {number}: expected a JSON object, got {type(record).__name__}"
    for field, required in fields.items():
        value = record.get(field)
        if value is None and not required:
            continue
        if not isinstance(value, str):
            what = "missing" if value is None else f"of type {type(value).__name__}, not a string"
            return None, f"line {number}: field {field!r} is {what}"
    return record, None


def _emit(verdict: dict) -> None:
    sys.stdout.write(json.dumps(verdict, ensure_ascii=False) + "\n")


def _finish(checked: int, errors: int, counts: dict) -> None:
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    err.print(f"checked {checked} line(s): {summary}; {errors} error(s)", highlight=False)
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
    for number, line in _lines(source):
        record, error = _record(number, line, {"text": True})
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
) -> None:
    """Judge final answers: `{"gold": ..., "pred": ..., "answer_format"?: plain|boxed|gsm8k,
    "checker"?: "countdown:4,6"}` per line; `pred` may be a whole reply (its last
    `\\boxed{}` is read).

    Out: `{"line", "verdict": correct|wrong|gold_unparseable|timeout|error, "correct",
    "gold", "pred", "why"}`.

    Example: echo '{"gold": "\\\\sqrt{2}", "pred": "1.414"}' | reasonfactory check answers -
    """
    from reasonfactory.generators.problems.sources import read_gold
    from reasonfactory.generators.verify.answer import Outcome
    from reasonfactory.generators.verify.answer_pool import PoolOptions, judge_answers_explained
    from reasonfactory.generators.verify.answers import extract_boxed

    fields = {"gold": True, "pred": True, "answer_format": False, "checker": False}
    rows: list[tuple[int, str | None, str | None, str | None] | tuple[int, str]] = []
    for number, line in _lines(source):
        record, error = _record(number, line, fields)
        fmt = (record or {}).get("answer_format") or "plain"
        if record is not None and fmt not in ("plain", "boxed", "gsm8k"):
            error = (
                f"line {number}: field 'answer_format' is {fmt!r}; expected plain, boxed or gsm8k"
            )
        if error:
            rows.append((number, error))
            continue
        pred = record["pred"]
        pred = extract_boxed(pred) or pred.strip()
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
    counts: dict[str, int] = {}
    errors = 0
    for row in rows:
        if len(row) == 2:
            errors += 1
            _emit({"line": row[0], "verdict": None, "error": row[1]})
            continue
        number, gold, pred, _ = row
        outcome, why = next(verdicts)
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
        correct = (
            outcome is Outcome.CORRECT if outcome in (Outcome.CORRECT, Outcome.WRONG) else None
        )
        _emit(
            {
                "line": number,
                "verdict": outcome.value,
                "correct": correct,
                "gold": gold,
                "pred": pred,
                "why": why if gold is not None else "no gold answer in that answer_format",
            }
        )
    _finish(len(good), errors, counts)
