"""JSONL lines that once printed a traceback in `check` and `eval --predictions` (or took
seconds per MB), each with the error it must get now (tests/test_cli_check.py,
tests/test_eval_predictions.py)."""

from __future__ import annotations

import json


def hostile_lines(field: str, good: dict) -> list[tuple[bytes, str]]:
    """`(line, error)` pairs: `error` is a regex of the message after the file and line;
    `good` is a valid record the hostile value goes into (as `field`)."""

    def with_raw(value: bytes) -> bytes:
        rest = json.dumps({k: v for k, v in good.items() if k != field})[1:-1].encode()
        return b"{%s%s%s: %s}" % (rest, b", " if rest else b"", json.dumps(field).encode(), value)

    return [
        (with_raw(b'"caf\xe9"'), r"not UTF-8 \(byte 0xe9"),
        (with_raw(b"9" * 5000), rf"field '{field}' holds a 5,000-digit integer"),
        (b"[" * 100_000, r"nested too deeply"),
        (with_raw(b'"a \\ud800 b"'), rf"field '{field}' holds a lone surrogate"),
        (with_raw(b'"' + b"x" * 3_000_000 + b'"'), r"the line is 3,0.* cap of 1,000,000 bytes"),
        (with_raw(b"NaN"), rf"field '{field}' holds NaN"),
    ]
