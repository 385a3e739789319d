"""The step-claim verifier measured on real text: GSM8K's human solution lines.

Two figures, both on the test set's solution lines with the `<<...>>` calculator notes
removed (`../shared/data/gsm8k_test.jsonl`, `answer` field):
- false alarms: correct lines that `check_equations` judges false (target <= 0.5%);
- catch rate: lines with one written result perturbed (the number after a calculator note)
  that it judges false (target >= 95%). A perturbed line the reader finds nothing checkable
  in counts as not caught; it is also reported on its own line as "unverifiable".

Perturbation kinds (`perturb`): plus_one, minus_one, digit (one digit changed), times_ten,
transpose (two adjacent different digits swapped), drop_digit (last digit dropped). Lines
whose result is a single digit skip the kinds that would not change it meaningfully.

Run from the repository root (seconds):

    python bench/bench_verifiers.py [--data PATH] [--show 5]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

from reasonfactory.generators.verify.steps import check_equations

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k_test.jsonl"
MATH500 = SHARED.with_name("math500.jsonl")
NOTE = re.compile(r"<<([^<>]*)>>")
# the written result right after a note: `<<9*2=18>>18`, `>>130,000`, `>>$4.50`, `>>-3`
RESULT = re.compile(r"<<[^<>]*>>(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+)")
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
    """MATH-500 solution paragraphs (LaTeX; the solutions are written by people)."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            out += [p for p in json.loads(raw)["solution"].split("\n") if p.strip()]
    return out


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


def perturbed_lines(lines: list[str], seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, original line, perturbed line without notes): one result changed per line."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        found = list(RESULT.finditer(line))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--math", type=Path, default=MATH500)
    parser.add_argument("--show", type=int, default=5, help="misses shown per kind")
    args = parser.parse_args()
    lines = solution_lines(args.data)

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

    rows = perturbed_lines(lines)
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
    print(f"perturbed lines (one written result changed): {all_total}")
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
            for text in misses.get(kind, [])[: args.show]:
                print(f"      miss: {text!r}")

    if args.math.exists():
        paragraphs = math_paragraphs(args.math)
        verdicts = Counter(check_equations(p).ok for p in paragraphs)
        print(f"MATH-500 solution paragraphs: {len(paragraphs)}")
        print(
            f"  judged true {verdicts[True]}, unverified {verdicts[None]}, false "
            f"{verdicts[False]} = {verdicts[False] / len(paragraphs):.2%}"
        )
        for p in paragraphs:
            check = check_equations(p)
            if check.ok is False:
                print(f"    FALSE: {p[:160]!r}...  ({check.detail})")


if __name__ == "__main__":
    main()
