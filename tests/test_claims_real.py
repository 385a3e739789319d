"""The claim reader on real text: GSM8K human solution lines and MATH-500 solutions.

`fixtures/real_step_lines.jsonl` holds lines copied from `../shared/data` (GSM8K test
`answer` lines with the `<<...>>` calculator notes removed, MATH-500 solution paragraphs),
each with whether it holds: the line as written (true), the same line with one written
result perturbed (false, with the perturbation's kind, as in `bench/bench_verifiers.py`),
and three lines that are wrong in the data sets themselves. The reader may leave a line
unverified (None) but must never give the opposite verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import shared_data
from reasonfactory.generators.verify.steps import check_equations, read_claims

FIXTURE = Path(__file__).parent / "fixtures" / "real_step_lines.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["line"][:60])
def test_a_real_line_never_gets_the_wrong_verdict(row):
    assert check_equations(row["line"]).ok is not (not row["holds"])


def test_real_lines_are_mostly_checked():
    perturbed = [r for r in ROWS if r.get("kind") and r["source"] == "gsm8k"]
    caught = sum(check_equations(r["line"]).ok is False for r in perturbed)
    assert len(perturbed) >= 200 and caught / len(perturbed) >= 0.95, (caught, len(perturbed))
    correct = [r for r in ROWS if r["source"] == "gsm8k" and r["holds"]]
    checked = sum(check_equations(r["line"]).ok is True for r in correct)
    assert checked / len(correct) >= 0.85, (checked, len(correct))


# (line as people write it, verdict: True holds / False does not / None nothing checkable)
TABLE = [
    # word and symbol operators, implicit multiplication by a percent or a fraction
    ("He makes $10.5 because 7 x 1.5 = 10.5", True),
    ("He makes $10.5 because 7 x 1.5 = 11.5", False),
    ("There are 20 x 20/100 = 4 students who enrolled in contemporary dance.", True),
    ("There are 20 x 20/100 = 5 students who enrolled in contemporary dance.", False),
    ("This is 12/20 x 100% = 60% of the entire students.", True),
    ("This is 12/20 x 100% = 65% of the entire students.", False),
    ("So 3 times 4 is 12, and 3 times 3 equals 9.", True),
    ("There were 9 tricycle tires because 3 times 3 equals 10.", False),
    ("20% of 50 = 10 dollars", True),
    ("20% of 50 = 12 dollars", False),
    ("Half of 10 = 5", None),  # the operation is a word the reader does not compute
    ("2x3=6", True),
    ("3x - 3 = 9", None),  # algebra
    ("The 4 pencils cost 4 \\cdot 0.25 = 1 dollar.", True),
    ("$12 \\div 5 = 2.4$", True),
    ("$\\frac{3}{4} \\times 12 = 9$", True),
    ("$\\frac{3}{4} \\times 12 = 8$", False),
    ("$\\dfrac{1}{2}+\\dfrac{1}{3}=\\dfrac{5}{6}$", True),
    ("The tax is 8\\% of 50, so $0.08 \\times 50 = 4$.", True),
    # units and currency on either side
    ("Together, the three has 20 sheep + 160 sheep + 80 sheep = 260 sheep", True),
    ("Together, the three has 20 sheep + 160 sheep + 80 sheep = 262 sheep", False),
    ("Therefore, Marie ordered $17/$8.50 = 2 boxes of pizza.", True),
    ("Therefore, Marie ordered $17/$8.50 = 3 boxes of pizza.", False),
    ("80 GB / 2 GB/minute = 40 minutes", True),
    ("80 GB / 2 GB/minute = 400 minutes", False),
    ("She makes 9 * 2 = $17 every day at the farmer’s market.", False),
    ("200 GB * 40% = 81 GB", False),
    ("$20/hour * 35 hours/week = $700/week", True),
    ("$20/hour * 35 hours/week = $100/week", False),
    ("8 clients * 1 pack of cloths per client = 8 packs of cloths.", True),
    ("3 hours = 180 minutes", None),  # a conversion: not judged
    ("It takes 2 hours = 120 minutes = 2 * 60 minutes.", True),
    # chains, running totals, mixed numbers, a result then a parenthetical
    ("So x = 12 / 3 = 4.", True),
    ("So x=220+23-80=163 Post-it notes.", True),
    ("So x=220+23-80=162 Post-it notes.", False),
    ("So 1/2 off is $3/2 = $1.50+$3.00=$4.50", True),
    ("So 1/2 off is $3/2 = $1.50+$3.00=$4.60", False),
    ("The museum tour will take 3 / 2 = 1 1/2 hours.", True),
    ("He has 5 - 1 - 1/2 = 3 1/2 hours of TV left.", True),
    ("He has 5 - 1 - 1/2 = 2 1/2 hours of TV left.", False),
    ("The trip takes 45 + 15 = 60 (minutes) in all.", True),
    ("The trip takes 45 + 15 = 70 (minutes) in all.", False),
    ("So 60/4 = 15 4-packs", True),
    ("So 60/4 = 16 4-packs", False),
    ("Howie: 25 classmates + his 1 teacher + 1 himself = 27 people.", None),
    # ≈ with the tolerance of the digits written, percents, repeating decimals
    ("10 / 3 ≈ 3.33", True),
    ("10 / 3 ≈ 3.3", True),
    ("10 / 3 ≈ 3.5", False),
    ("1000 / 3 ≈ 330", True),
    ("1000 / 3 ≈ 340", False),
    ("$22/7 \\approx 3.14$", True),
    ("32 / 96 * 100% = 33.333...%, which rounds down to 33%", True),
    ("The oven is off by 4% because 18 / 450 x 100 = 4%", True),
    ("The oven is off by 4% because 18 / 450 x 100 = 5%", False),
    ("$\\frac{279}{99999} = 0.\\overline{00279}$", True),
    ("$\\frac{1}{6} = 0.1\\overline{7}$", False),
    ("¾ x 3/3 = 9/12", True),
    ("Since $90^3=729,\\!000$, AB is greater than 90.", True),
    ("A class of 1\\,000 students: 1\\,000 / 4 = 250.", True),
    # full-width forms and Chinese
    ("所以一共有 5 + 3 ＝ 8 个苹果。", True),
    ("所以一共有 5 + 3 ＝ 9 个苹果。", False),
    ("每天卖 16 - 3 - 4 = 9 个鸡蛋，收入 9 × 2 = 18 元。", True),
    ("每天卖 16 - 3 - 4 = 9 个鸡蛋，收入 9 × 2 = 19 元。", False),
    ("5乘以3等于15", True),
    ("5乘以3等于16", False),
    ("１２ ÷ ４ ＝ ３", True),
    ("5个 + 3个 = 8个", True),
    ("计算：（12 + 8）× 2 = 40。", True),
    ("计算：（12 + 8）× 2 = 41。", False),
    # GSM8K test solutions the reader found nothing in: an ordinal or a unit written onto a
    # result, a chain that ends in its unknown, up to eight words of unit between operands
    ("She then fell behind by 3 spots, which is expressed as 4+3=7th place", True),
    ("She then fell behind by 3 spots, which is expressed as 4+3=8th place", False),
    ("So, Ashley’s internet connection speed is 1.2*60 = 72Mb per hour.", True),
    ("So, Ashley’s internet connection speed is 1.2*60 = 62Mb per hour.", False),
    ("250(2/5)=100=x", True),
    ("250(2/5)=110=x", False),
    (
        "The difference between these is therefore the steps he took during his jog, which was "
        "8,000 total steps – 6,000 steps on his school walks and short walks = 2,000 steps.",
        True,
    ),
    (
        "There were 90 bees total that left the hive - 15 bees that already returned = 76 bees "
        "that return to the hive in the last 6 hours of the day.",
        False,
    ),
    ("so 12 = 4ab and 6 = 3xy", None),  # algebra: letters written onto a number
    ("so 2 + 10 = 3m", None),  # no one-letter unit: `m` may be the unknown
    # a space between thousands after a currency sign (GSM8K writes `$350 000`)
    ("The brokerage fee is $350 000 x 5/100 = $17500.", True),
    ("So, it is $409 500 - $400 000 = $9600 more than Mrs. Cruz's budget.", False),
    # prose and algebra: nothing checkable
    ("First find how many eggs she has left, then multiply by the price.", None),
    ("Let $x$ be the number of apples, so $2x + 3 = 11$.", None),
    ("$f(3) = 9$ and $x^2 = 4$", None),
    ("The answer is \\boxed{48}.", None),
]


@pytest.mark.parametrize("line,verdict", TABLE, ids=[t[0][:50] for t in TABLE])
def test_table_of_lines_as_people_write_them(line, verdict):
    check = check_equations(line)
    assert check.ok is verdict, (check, read_claims(line))


def test_the_whole_gsm8k_test_set_meets_the_targets():
    """The bench's two figures on every GSM8K test line (about three seconds)."""
    path = shared_data("gsm8k_test.jsonl")
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    try:
        from bench_verifiers import perturbed_lines, solution_lines, strip_notes
    finally:
        sys.path.pop(0)
    lines = solution_lines(path)
    false_alarms = sum(check_equations(strip_notes(line)).ok is False for line in lines)
    assert false_alarms / len(lines) <= 0.005, false_alarms
    rows = perturbed_lines(lines)
    caught = sum(check_equations(changed).ok is False for _, _, changed in rows)
    assert caught / len(rows) >= 0.95, (caught, len(rows))


def test_the_readme_quotes_what_the_bench_prints(capsys, monkeypatch):
    """README's figures for the claim reader, `answer_in_steps` and the whole pipeline on
    GSM8K's human solutions, development and held out, are the ones
    `bench/bench_verifiers.py` prints (about ten seconds)."""
    import re

    paths = [shared_data(n) for n in ("gsm8k_test.jsonl", "math500.jsonl", "aime24.jsonl")]
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    try:
        from bench_verifiers import main
    finally:
        sys.path.pop(0)
    argv = ["bench_verifiers.py", "--show", "0"]
    for flag, path in zip(("--data", "--math", "--aime"), paths, strict=True):
        argv += [flag, str(path)]
    monkeypatch.setattr(sys, "argv", argv)
    main()
    out = capsys.readouterr().out
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())

    def grab(pattern: str) -> tuple[str, ...]:
        m = re.search(pattern, out)
        assert m, pattern
        return m.groups()

    def pct(text: str) -> str:
        return f"{float(text):.1f}%"

    [dev_false] = grab(r"false alarms on correct lines: \d+ / \d+ = ([\d.]+%)")
    [dev_caught] = grab(
        r"perturbed lines \(one written result changed\): \d+\n  caught: .* = ([\d.]+)%"
    )
    assert f"{dev_false} of correct lines judged false, {pct(dev_caught)} of lines" in readme
    n, false = grab(r"AIME 2024 solution paragraphs \(aime24.jsonl\): (\d+)\n.* false (\d+)")
    assert f"{false} of AIME 2024's {int(n):,} solution paragraphs judged false" in readme
    aime_n, aime = grab(
        r"AIME 2024 paragraphs with a number after `=` changed: (\d+)\n  caught: .* = ([\d.]+)%"
    )
    math_n, math = grab(
        r"MATH-500 paragraphs with a number after `=` changed: (\d+)\n  caught: .* = ([\d.]+)%"
    )
    held_out = f"{pct(aime)} caught on AIME 2024 ({aime_n} lines) and {pct(math)} on MATH-500"
    assert f"{held_out} ({math_n} lines)" in readme
    rejected = (
        r": .* right answers rejected \d+ / \d+ = ([\d.]+%), "
        r"answers off by one rejected \d+ / \d+ = ([\d.]+%)"
    )
    right, off = grab(r"development, gsm8k_test.jsonl" + rejected)
    assert f"{right} of right answers rejected, {off} of answers off by one caught" in readme
    (math_right, math_off), (aime_right, aime_off) = (
        grab("math500.jsonl" + rejected),
        grab("aime24.jsonl" + rejected),
    )
    both = f"{math_right} and {aime_right} of right answers rejected, {math_off} and {aime_off}"
    assert f"{both} off by one caught" in readme
    count, share, changed = grab(
        r"human solutions: rejected (\d+) / 1319 = ([\d.]+%) .*\n"
        r"  the same, one result changed: rejected \d+ / \d+ = ([\d.]+%)"
    )
    assert f"rejects {share} of GSM8K's human solutions (development: {count} of 1,319" in readme
    assert f"and {changed} of the same with one result changed" in readme
