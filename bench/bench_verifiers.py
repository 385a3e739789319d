"""The step-claim verifier and the steps filter's `answer_in_steps`, measured on real text.

Each figure is printed under the set it was measured on, development or held out:

- development: GSM8K's test solutions (`gsm8k_test.jsonl`, all 1,319 problems, 4,819
  solution lines, `<<...>>` calculator notes removed). The claim reader was written against
  this bench on these lines (`git log -p -- generators/verify/claims.py tests/fixtures/`:
  the bench came with the reader, commit 0c8f0dc, and read the whole file; the 420 GSM8K
  rows of `tests/fixtures/real_step_lines.jsonl` come from problems across all of it), and
  `answer_in_steps` was measured on the same solutions when it was added (87165a2). The
  MATH-500 false-alarm count was printed by this bench from the start and 121 fixture rows
  come from MATH-500, so it is development too.
- held out (never read while the rules were written; nothing was tuned after measuring):
  AIME 2024's solutions (`aime24.jsonl`, 1,336 paragraphs), MATH-500 solution paragraphs
  with one result changed (their catch rate was never measured before), the lines of the
  committed SmolLM2 replies (`tests/fixtures/smollm2_replies.jsonl`, a real model's text)
  that the reader judges true with a number after `=` changed, and `answer_in_steps` on
  MATH-500 and AIME 2024 solutions with a plain-number answer.

The figures:
- false alarms: correct lines that `check_equations` judges false (target <= 0.5%);
- catch rate: lines with one written result perturbed that it judges false (target >= 95%).
  On GSM8K the result is the number after a calculator note; LaTeX solutions have none, so
  there it is a number written right after `=` whose left side ends in a digit or bracket
  and that ends the math or the clause (`AFTER_EQUALS`; it also picks algebra such as
  `f(3) = 9`, which no arithmetic reader can catch). A perturbed line the reader finds
  nothing checkable in counts as not caught; it is also reported as "unverifiable";
- `answer_in_steps`: right final answers it rejects among the solutions the default steps
  filter keeps, and answers off by one it rejects.

Perturbation kinds (`perturb`): plus_one, minus_one, digit (one digit changed), times_ten,
transpose (two adjacent different digits swapped), drop_digit (last digit dropped). Lines
whose result is a single digit skip the kinds that would not change it meaningfully.

Run from the repository root (seconds); the data folder is `$REASONFACTORY_SHARED_DATA`,
else `../shared/data` beside the checkout:

    python bench/bench_verifiers.py [--data PATH] [--math PATH] [--aime PATH] [--replies PATH]
        [--show 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from collections import Counter
from pathlib import Path

import polars as pl
from reasonfactory.filters.steps import steps_filter
from reasonfactory.generators.verify.chains import format_value
from reasonfactory.generators.verify.exact import plain_number
from reasonfactory.generators.verify.steps import check_equations

_DATA = os.environ.get("REASONFACTORY_SHARED_DATA")
SHARED = (
    Path(_DATA) if _DATA else Path(__file__).resolve().parents[2] / "shared" / "data"
) / "gsm8k_test.jsonl"
MATH500 = SHARED.with_name("math500.jsonl")
AIME24 = SHARED.with_name("aime24.jsonl")
REPLIES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "smollm2_replies.jsonl"
NOTE = re.compile(r"<<([^<>]*)>>")
# the written result right after a note: `<<9*2=18>>18`, `>>130,000`, `>>$4.50`, `>>-3`
RESULT = re.compile(r"<<[^<>]*>>(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+)")
# LaTeX solutions: a number right after `=` whose left side ends in a digit or a bracket,
# ending the math (`$`, `\]`, `\)`), the chain (`=`) or the clause (`.`, `,`, `;`, `:`)
AFTER_EQUALS = re.compile(
    r"(?<=[\d)}])\s*=\s*(-?\d+(?:\.\d+)?)(?=\s*(?:\$|\\\]|\\\)|=|[.,;:]?\s*$|[.,;:]\s))"
)
KINDS = ("plus_one", "minus_one", "digit", "times_ten", "transpose", "drop_digit")


def solution_lines(path: Path) -> list[str]:
    """Every solution line (with notes) of the file, the `#### answer` line left out."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            for line in json.loads(raw)["answer"].split("\n"):
                if line.strip() and not line.startswith("####"):
                    lines.append(line)
    return lines


def math_paragraphs(path: Path) -> list[str]:
    """MATH-500 (or AIME) solution paragraphs (LaTeX; the solutions are written by people)."""
    return [p for _, paragraphs in solutions(path) for p in paragraphs]


def solutions(path: Path) -> list[tuple[str, list[str]]]:
    """(answer, solution paragraphs) of each row of a MATH-500 or AIME file."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            row = json.loads(raw)
            paragraphs = [p for p in row["solution"].split("\n") if p.strip()]
            out.append((str(row["answer"]), paragraphs))
    return out


def model_lines(path: Path) -> list[str]:
    """The lines of real model replies (`tests/fixtures/smollm2_replies.jsonl`) that
    `check_equations` judges true: where a changed result should be caught."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            for line in json.loads(raw)["reply"].split("\n"):
                if line.strip() and check_equations(line).ok is True:
                    lines.append(line)
    return lines


def strip_notes(line: str) -> str:
    return NOTE.sub("", line)


def perturb(number: str, kind: str, rng: random.Random) -> str | None:
    """`number` as written, changed by `kind`; None when the kind does not apply."""
    commas = "," in number
    plain = number.replace(",", "")
    neg = plain.startswith("-")
    body = plain.lstrip("-")
    digits = [i for i, ch in enumerate(body) if ch.isdigit()]
    out: str | None = None
    if kind in ("plus_one", "minus_one"):
        step = 1 if kind == "plus_one" else -1
        if "." in body:
            places = len(body.split(".")[1])
            value = round(float(plain) + step, places)
            out = f"{value:.{places}f}"
        else:
            out = str(int(plain) + step)
    elif kind == "digit":
        i = rng.choice(digits)
        new = rng.choice([d for d in "0123456789" if d != body[i] and not (i == 0 and d == "0")])
        out = ("-" if neg else "") + body[:i] + new + body[i + 1 :]
    elif kind == "times_ten":
        out = ("-" if neg else "") + (body + "0" if "." not in body else str(float(body) * 10))
    elif kind == "transpose":
        pairs = [
            i
            for i in range(len(body) - 1)
            if body[i].isdigit()
            and body[i + 1].isdigit()
            and body[i] != body[i + 1]
            and not (i == 0 and body[1] == "0")
        ]
        if not pairs:
            return None
        i = rng.choice(pairs)
        out = ("-" if neg else "") + body[:i] + body[i + 1] + body[i] + body[i + 2 :]
    elif kind == "drop_digit":
        if len(digits) < 2 or "." in body:
            return None
        out = ("-" if neg else "") + body[:-1]
    if out is None or out.replace(",", "") == plain:
        return None
    if commas and "." not in out and len(out.lstrip("-")) > 3:
        out = f"{int(out):,}"
    return out


def perturbed_lines(
    lines: list[str], seed: int = 0, result: re.Pattern = RESULT
) -> list[tuple[str, str, str]]:
    """(kind, original line, perturbed line without notes): one result changed per line."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        found = list(result.finditer(line))
        if not found:
            continue
        m = rng.choice(found)
        kind = KINDS[len(out) % len(KINDS)]
        new = perturb(m.group(1), kind, rng)
        if new is None:
            kind = "plus_one"
            new = perturb(m.group(1), kind, rng)
        changed = line[: m.start(1)] + new + line[m.end(1) :]
        out.append((kind, strip_notes(line), strip_notes(changed)))
    return out


def report_catch(title: str, rows: list[tuple[str, str, str]], show: int) -> None:
    """The catch rate on perturbed lines, overall and per kind, with some misses."""
    caught, unverifiable, total = Counter(), Counter(), Counter()
    misses: dict[str, list[str]] = {}
    for kind, _original, changed in rows:
        total[kind] += 1
        check = check_equations(changed)
        if check.ok is False:
            caught[kind] += 1
        else:
            if check.ok is None:
                unverifiable[kind] += 1
            misses.setdefault(kind, []).append(changed)
    all_caught, all_total = sum(caught.values()), sum(total.values())
    print(f"{title}: {all_total}")
    print(f"  caught: {all_caught} / {all_total} = {all_caught / all_total:.2%}")
    print(
        f"  not caught: {all_total - all_caught} (of which nothing checkable: "
        f"{sum(unverifiable.values())}, judged true: "
        f"{all_total - all_caught - sum(unverifiable.values())})"
    )
    for kind in KINDS:
        if total[kind]:
            missed = total[kind] - caught[kind]
            print(
                f"  {kind:<10} caught {caught[kind]}/{total[kind]} = "
                f"{caught[kind] / total[kind]:.2%}; missed {missed} "
                f"(unverifiable {unverifiable[kind]})"
            )
            for text in misses.get(kind, [])[:show]:
                print(f"      miss: {text!r}")


def report_paragraphs(title: str, paragraphs: list[str]) -> None:
    """False alarms on correct paragraphs of LaTeX solutions."""
    verdicts = Counter(check_equations(p).ok for p in paragraphs)
    print(f"{title}: {len(paragraphs)}")
    print(
        f"  judged true {verdicts[True]}, unverified {verdicts[None]}, false "
        f"{verdicts[False]} = {verdicts[False] / len(paragraphs):.2%}"
    )
    for p in paragraphs:
        check = check_equations(p)
        if check.ok is False:
            print(f"    FALSE: {p[:160]!r}...  ({check.detail})")


def answer_in_steps(thoughts: list[str], right: list[str], off_by_one: list[str]) -> str:
    """`answer_in_steps` on solutions the default steps filter keeps: right answers rejected,
    answers off by one rejected."""

    def rejected(answers: list[str]) -> tuple[int, int]:
        df = pl.DataFrame({"thought": thoughts, "predicted": answers})
        base = steps_filter(df)["ok"]
        extra = base & ~steps_filter(df, {"answer_in_steps": True})["ok"]
        return int(extra.sum()), int(base.sum())

    (r, n), (o, _) = rejected(right), rejected(off_by_one)
    return (
        f"{len(thoughts)} solutions, {n} kept by the steps filter: right answers rejected "
        f"{r} / {n} = {r / n:.1%}, answers off by one rejected {o} / {n} = {o / n:.1%}"
    )


def gsm8k_solutions(path: Path) -> tuple[list[str], list[str]]:
    """(thought of `\\n\\n`-separated solution lines without notes, gold) per problem."""
    thoughts, golds = [], []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            solution, gold = json.loads(raw)["answer"].split("####")
            lines = strip_notes(solution).strip().split("\n")
            thoughts.append("\n\n".join(x for x in lines if x.strip()))
            golds.append(gold.strip().replace(",", ""))
    return thoughts, golds


PIPELINE = ["format", "answer", {"steps": {"answer_in_steps": True}}]


def pipeline_on_solutions(path: Path, seed: int = 0) -> list[str]:
    """The filters `PIPELINE` (`apply_filters`, as a run applies them) on every solution as an
    R1 trace (its lines, notes removed, as the thought; `\\boxed{gold}` as the response), and
    on the same solutions with one calculator result changed (one kind of `KINDS` each)."""
    from reasonfactory.filters.pipeline import apply_filters, parse_filter_spec

    rng = random.Random(seed)
    right, changed, golds, golds_changed = [], [], [], []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        solution, gold = json.loads(raw)["answer"].split("####")
        gold = gold.strip().replace(",", "")
        lines = [x for x in solution.strip().split("\n") if x.strip()]
        right.append("\n\n".join(strip_notes(x) for x in lines))
        golds.append(gold)
        spots = [(i, m) for i, x in enumerate(lines) for m in RESULT.finditer(x)]
        if not spots:
            continue
        i, m = rng.choice(spots)
        new = perturb(m.group(1), rng.choice(KINDS), rng) or perturb(m.group(1), "plus_one", rng)
        lines[i] = lines[i][: m.start(1)] + new + lines[i][m.end(1) :]
        changed.append("\n\n".join(strip_notes(x) for x in lines))
        golds_changed.append(gold)
    specs = [parse_filter_spec(f) for f in PIPELINE]
    out = []
    for name, thoughts, answers in (
        ("human solutions", right, golds),
        ("the same, one result changed", changed, golds_changed),
    ):
        n = len(thoughts)
        frame = pl.DataFrame(
            {
                "trace_id": [str(k) for k in range(n)],
                "problem_id": [str(k) for k in range(n)],
                "thought": thoughts,
                "response": [f"The answer is \\boxed{{{g}}}." for g in answers],
                "predicted": answers,
                "think_closed": [True] * n,
                "finish_reason": ["stop"] * n,
                "gold": answers,
                "gold_source": ["problem"] * n,
                "meta": ["{}"] * n,
            }
        )
        verdicts = apply_filters(frame, specs)
        reasons = Counter(r for r in verdicts["reject_reason"].to_list() if r)
        k = sum(reasons.values())
        why = ", ".join(f"{r} {c}" for r, c in reasons.most_common())
        out.append(f"{name}: rejected {k} / {n} = {k / n:.2%} ({why})")  # 0.99% is <= 1%
    return out


def latex_answers(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(thought, right answer, answer off by one) of each solution with a plain-number answer."""
    out = ([], [], [])
    for answer, paragraphs in solutions(path):
        value = plain_number(answer)
        if value is not None:
            out[0].append("\n\n".join(paragraphs))
            out[1].append(answer)
            out[2].append(format_value(value + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--math", type=Path, default=MATH500)
    parser.add_argument("--aime", type=Path, default=AIME24)
    parser.add_argument("--replies", type=Path, default=REPLIES)
    parser.add_argument("--show", type=int, default=5, help="misses shown per kind")
    args = parser.parse_args()
    lines = solution_lines(args.data)

    print(
        f"== development set: {args.data.name}, every solution line (the claim reader's "
        "rules and test fixtures were written against these lines)"
    )
    verdicts = Counter()
    false_alarms = []
    for line in lines:
        check = check_equations(strip_notes(line))
        verdicts[check.ok] += 1
        if check.ok is False:
            false_alarms.append((strip_notes(line), check.detail))
    n = len(lines)
    print(f"GSM8K test solution lines: {n}")
    print(
        f"  judged true {verdicts[True]}, unverified (nothing checkable) {verdicts[None]}, "
        f"false {verdicts[False]}"
    )
    print(f"  false alarms on correct lines: {verdicts[False]} / {n} = {verdicts[False] / n:.2%}")
    for text, detail in false_alarms[: args.show * 4]:
        print(f"    FALSE: {text!r}  ({detail})")
    report_catch("perturbed lines (one written result changed)", perturbed_lines(lines), args.show)

    if args.math.exists():
        print(f"== development set: {args.math.name} (its false alarms were printed here)")
        report_paragraphs("MATH-500 solution paragraphs", math_paragraphs(args.math))
    print("== held out (never read while the rules were written)")
    if args.aime.exists():
        aime = math_paragraphs(args.aime)
        report_paragraphs(f"AIME 2024 solution paragraphs ({args.aime.name})", aime)
        rows = perturbed_lines(aime, result=AFTER_EQUALS)
        report_catch("AIME 2024 paragraphs with a number after `=` changed", rows, args.show)
    if args.math.exists():
        rows = perturbed_lines(math_paragraphs(args.math), result=AFTER_EQUALS)
        report_catch("MATH-500 paragraphs with a number after `=` changed", rows, args.show)

    if args.replies.exists():
        rows = perturbed_lines(model_lines(args.replies), result=AFTER_EQUALS)
        report_catch(
            f"SmolLM2 reply lines judged true ({args.replies.name}), a number after `=` changed",
            rows,
            args.show,
        )
    print("== answer_in_steps (steps filter)")
    thoughts, golds = gsm8k_solutions(args.data)
    off = [str(int(float(g)) + 1) for g in golds]
    print(f"  development, {args.data.name}: {answer_in_steps(thoughts, golds, off)}")
    for path in (args.math, args.aime):
        if path.exists():
            print(f"  held out, {path.name}: {answer_in_steps(*latex_answers(path))}")
    print(f"== the pipeline {json.dumps(PIPELINE)} on {args.data.name} (development)")
    for line in pipeline_on_solutions(args.data):
        print(f"  {line}")


if __name__ == "__main__":
    main()
