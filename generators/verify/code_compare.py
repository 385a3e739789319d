"""Compare a program's output or return value with the expected one, outside the sandbox.

Modes (a problem's `compare`, documented per shape in README):
- `exact`: the same text (stdio) or the same value (call);
- `whitespace` (stdio's default): the same lines of the same whitespace-separated tokens,
  ignoring leading and trailing blank lines and spaces at line ends (LiveCodeBench's rule);
- `float`: as `whitespace`, but two tokens (or values) that both read as numbers are equal
  within a relative or absolute 1e-6 (`FLOAT_TOL`).
A `call` value is plain data (what `sandbox_harness` sends back): a value the harness could
only show as its repr never equals anything.

>>> same_output("1 2\\n3\\n\\n", "1  2\\n3", "whitespace")
True
>>> same_output("0.3333333", "0.333333333", "float")
True
>>> same_value([1, [2, 3]], [1, [2, 3]], "exact")
True
"""

from __future__ import annotations

import math
from typing import Literal

CompareMode = Literal["exact", "whitespace", "float"]
FLOAT_TOL = 1e-6


def same_output(got: str, expected: str, mode: CompareMode) -> bool:
    if mode == "exact":
        return got == expected
    a, b = _lines(got), _lines(expected)
    if len(a) != len(b):
        return False
    for line_a, line_b in zip(a, b, strict=True):
        if len(line_a) != len(line_b):
            return False
        for x, y in zip(line_a, line_b, strict=True):
            if x != y and not (mode == "float" and _close_text(x, y)):
                return False
    return True


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def _close_text(x: str, y: str) -> bool:
    try:
        a, b = float(x), float(y)
    except ValueError:
        return False
    return _close(a, b)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= FLOAT_TOL * max(1.0, abs(b))


def same_value(got, expected, mode: CompareMode) -> bool:
    """Plain data from the harness against the expected JSON value."""
    got = _unwrap(got)
    if isinstance(got, _Opaque):
        return False
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, int | float) and isinstance(expected, int | float):
        if mode == "float":
            return _close(float(got), float(expected))
        return got == expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            same_value(a, b, mode) for a, b in zip(got, expected, strict=True)
        )
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(
            same_value(got[k], expected[k], mode) for k in got
        )
    return type(got) is type(expected) and got == expected


class _Opaque:
    """A value the harness could only show as its repr: equal to nothing."""


def _unwrap(value):
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "dict" and isinstance(inner, dict):
            return {k: v for k, v in inner.items()}
        if key == "float" and isinstance(inner, str):
            return float(inner)
        if key == "repr":
            return _Opaque()
    if isinstance(value, dict):
        return _Opaque()  # the harness sends dicts only as {"dict": ...}
    return value
