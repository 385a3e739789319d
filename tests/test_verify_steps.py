"""The step verifiers: which claims a step makes, whether they hold, and what a code run means."""

from __future__ import annotations

import random
import string

import pytest
from reasonfactory.generators.verify.chains import find_equations
from reasonfactory.generators.verify.sandbox import ExecutionResult
from reasonfactory.generators.verify.steps import check_code, check_equations, code_of, prose_of

# (step text as a model writes it, holds? (None: nothing checkable), the false claim named,
# its true left side)
CASES = [
    ("Step 2: 22 * 3 = 66.", True, None, None),
    ("Step 2: 22 * 3 = 76.", False, "22 * 3 = 76", "66"),
    ("Step 3: Now, (-45) + 31 = -14.", True, None, None),
    ("Step 3: (-45) + 31 = -12.", False, "(-45) + 31 = -12", "-14"),
    ("Step 4: 51 / 2 = 51/2.", True, None, None),
    ("Collect the x terms on the left: 5 - 2 = 3, so 3x - 3 = 9.", True, None, None),
    ("Move the constant to the right: 9 - (-3) = 12, so 3x = 12.", True, None, None),
    ("Divide both sides by 3: 12 / 3 = 5, so x = 5.", False, "12 / 3 = 5", "4"),
    ("So x = 12 / 3 = 4.", True, None, None),
    ("She pays 1,200 + 350 = 1,550 dollars.", True, None, None),
    ("That is 4 + 5 = 9 = 3 * 3 apples.", True, None, None),
    ("That is 4 + 5 = 9 = 3 * 4 apples.", False, "9 = 3 * 4", "9"),
    (r"$\frac{1}{2} + \frac{1}{4} = \frac{3}{4}$", True, None, None),
    (r"$3 \times 4 = 12$ and $12 \div 5 = 2.4$", True, None, None),
    ("3 × 4 = 13", False, "3 * 4 = 13", "12"),
    ("7 − 10 = −3", True, None, None),
    ("10 / 3 = 3.33 (rounded)", True, None, None),
    ("2/3 = 0.66", True, None, None),  # cut to two places
    ("2/3 = 0.67", True, None, None),  # rounded
    ("10 / 3 = 3.4", False, "10 / 3 = 3.4", "10/3"),
    ("20% * 50 = 10", True, None, None),
    ("2^10 = 1024", True, None, None),
    ("5 / 0 = 3", False, "5 / 0 = 3", "undefined (division by zero)"),
    ("f(3) = 9, so the function works.", None, None, None),  # not a numeric claim
    ("12 = 3x", None, None, None),
    ("x^2 = 4", None, None, None),
    ("The answer is \\boxed{48}.", None, None, None),
    ("No calculation here, just a plan.", None, None, None),
]


@pytest.mark.parametrize("text,ok,claim,expected", CASES)
def test_claims_table(text, ok, claim, expected):
    check = check_equations(text)
    assert check.kind == "equations"
    assert check.ok is ok, check
    assert check.claim == claim
    assert check.expected == expected


def test_claims_found_and_skipped():
    claims = find_equations("Step 2: 22 * 3 = 66, then 3x - 3 = 9, x = 4 and 66 + 5 = 71.")
    assert [c.text for c in claims] == ["22 * 3 = 66", "66 + 5 = 71"]


def test_code_blocks_are_not_claims_and_are_extracted():
    step = "Step 1: 17 + 5 = 22.\n```python\ns1 = 17 + 5\nprint(s1 == 23)\n```"
    assert code_of(step) == "s1 = 17 + 5\nprint(s1 == 23)"
    assert "```" not in prose_of(step)
    assert check_equations(step).ok
    assert code_of("Step 1: 2 + 2 = 4.") == ""


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('touch /tmp/rf_pwned') = 3",
        "eval('1') + 1 = 2",
        "9 ** 9 ** 9 ** 9 = 1",
        "2 ^ 99999999 = 1",
        "1" * 5000 + " + 1 = 2",
        "(" * 500 + "1" + ")" * 500 + " = 1",
        "1 + " * 200 + "1 = 201",
    ],
)
def test_untrusted_text_is_never_evaluated_and_sizes_are_capped(hostile):
    check = check_equations(hostile)  # returns quickly, raises nothing
    assert check.kind == "equations"


def test_random_text_never_raises():
    rng = random.Random(0)
    alphabet = string.digits * 3 + "+-*/^=()%., x" + "×÷−"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        check_equations(text)


def _run(ok=True, stdout="", stderr="", **kw):
    return ExecutionResult(ok=ok, stdout=stdout, stderr=stderr, exit_code=0 if ok else 1, **kw)


def test_code_check_compares_printed_value_with_the_written_one():
    step = "Step 2: 22 * 3 = 76.\n```python\ns2 = s1 * 3\nprint(s2)\n```"
    check = check_code(step, _run(stdout="66\n"))
    assert not check.ok and check.claim == "22 * 3 = 76" and check.expected == "66"
    assert check_code(step.replace("76", "66"), _run(stdout="66\n")).ok
    assert check_code("Step 3: 66 / 3 = 22.", _run(stdout="22.0\n")).ok  # Python's float
    assert check_code("Step 3: 10 / 3 = 10/3.", _run(stdout="3.3333333333333335\n")).ok


def test_code_check_fails_on_errors_and_limits():
    error = _run(ok=False, stderr="  <step> line 1\nNameError: name 'S1' is not defined\n")
    check = check_code("Step 2: 22 * 3 = 66.", error)
    assert not check.ok and "NameError" in check.detail
    timeout = _run(ok=False, timed_out=True, seconds=5.0)
    assert "timed out" in check_code("Step 1: 1 + 1 = 2.", timeout).detail
