"""`extract_boxed` on real answers and on hostile replies (untrusted model text)."""

from __future__ import annotations

import time

import pytest
from reasonfactory.generators.verify.answers import MAX_BOXED_SCAN, extract_boxed

CASES = [
    # (text, expected): from MATH-500 solutions and R1-style replies
    (r"The answer is $\boxed{\frac{14}{3}}$.", r"\frac{14}{3}"),
    (r"so $\boxed{p - q}$", "p - q"),
    (r"\boxed{1} or rather \boxed{\dfrac{1}{2}}.", r"\dfrac{1}{2}"),
    (r"\boxed{\text{(C)}}", r"\text{(C)}"),
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    (r"\boxed{a} then \boxed{b", "a"),  # the last one never closes
    (r"} stray \fbox{x}", "x"),
    (r"\boxed{\boxed{7}}", "7"),
    ("no answer here", None),
    (r"\boxed{", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_boxed_reads_the_last_balanced_box(text, expected):
    assert extract_boxed(text) == expected


def test_repeated_openings_do_not_stall():
    # 16,000 openings took 124 s with the quadratic scan; the linear one takes milliseconds.
    # The bound is a hang guard, not a speed target (that is bench/'s job).
    hostile = "\\boxed{" * 100_000 + "\\boxed{42}"
    t0 = time.monotonic()
    assert extract_boxed(hostile) == "42"
    assert extract_boxed("\\boxed{" * 100_000) is None
    assert time.monotonic() - t0 < 5


def test_only_the_tail_is_read():
    far = "\\boxed{1}" + "x" * MAX_BOXED_SCAN
    assert extract_boxed(far) is None
    assert extract_boxed("x" * (2 * MAX_BOXED_SCAN) + "\\boxed{2}") == "2"
