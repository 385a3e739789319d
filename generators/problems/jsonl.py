"""Read JSONL the one way every command does: `import`, `check`, `eval --predictions`.

A line is bytes until it is checked: at most `max_bytes` long (checked before it is parsed,
and the rest of a longer line is skipped without being held), UTF-8 (a BOM on the first line
is fine), JSON with no NaN/Infinity and no integer longer than Python converts (4,300 digits; each
named by its field),
not nested deeper than the parser's stack, one object, and no lone surrogate escape
(`\\ud800` without its pair is not text: it cannot be stored or printed). A bad line is a
`JsonLineError` whose message starts with `where` (the file and the line).

Not here: what the fields mean (each caller checks its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

from reasonfactory.warehouse.errors import UserError

BOM = b"\xef\xbb\xbf"
# One line of `check` or `eval --predictions`: a long reasoning trace is ~100 KB, and the
# verifiers take seconds per MB, so a longer line is refused before it is parsed.
MAX_LINE_BYTES = 1_000_000
MAX_INT_DIGITS = 4300  # Python's own limit (sys.get_int_max_str_digits), said plainly
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_CHUNK = 1 << 16


class JsonLineError(UserError):
    """One line of a JSONL file that is not a usable JSON object."""


def read_jsonl(
    fh: BinaryIO, where: Callable[[int], str], max_bytes: int | None = None
) -> Iterator[tuple[int, dict | JsonLineError]]:
    """`(line number, record)` per non-blank line, or `(line number, error)` for a bad one,
    so a caller may stop at the first error or go on. A line over `max_bytes` is read in
    chunks and dropped, never held whole. `where(n)` names line n in messages.

    >>> import io
    >>> lines = io.BytesIO(b'\\xef\\xbb\\xbf{"a": 1}\\n\\n[1]\\n')
    >>> [(n, str(r)) for n, r in read_jsonl(lines, lambda n: f"f line {n}")]
    [(1, "{'a': 1}"), (3, 'f line 3: expected a JSON object, got a list')]
    """
    number = 0
    while True:
        raw = fh.readline(max_bytes + 1) if max_bytes else fh.readline()
        if not raw:
            return
        number += 1
        if number == 1:
            raw = raw.removeprefix(BOM)
        if max_bytes and len(raw) > max_bytes and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(_CHUNK)
                size += len(raw)
            yield (
                number,
                JsonLineError(
                    f"{where(number)}: the line is {size:,} bytes, over the cap of "
                    f"{max_bytes:,} bytes per line"
                ),
            )
            continue
        try:
            record = parse_line(raw, where(number))
        except JsonLineError as exc:
            yield number, exc
            continue
        if record is not None:
            yield number, record


def parse_line(raw: bytes, where: str) -> dict | None:
    """One JSONL line as a dict (None for a blank line); a bad line is a `JsonLineError`.

    >>> parse_line(b'{"a": 1}', "f.jsonl line 1")
    {'a': 1}
    >>> parse_line(b'[' * 100_000, "f.jsonl line 2")
    Traceback (most recent call last):
    reasonfactory.generators.problems.jsonl.JsonLineError: f.jsonl line 2: nested too deeply
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonLineError(
            f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None
    if not line.strip():
        return None
    invalid: list[_Invalid] = []  # NaN/Infinity and over-long integers, found while parsing

    def constant(name: str) -> _Invalid:
        invalid.append(_Invalid(f"{name}, which is not a JSON value"))
        return invalid[-1]

    def integer(digits: str) -> int | _Invalid:
        if len(digits.lstrip("-")) <= MAX_INT_DIGITS:
            return int(digits)
        invalid.append(_Invalid(f"a {len(digits):,}-digit integer (at most {MAX_INT_DIGITS})"))
        return invalid[-1]

    try:
        record = json.loads(line, parse_constant=constant, parse_int=integer)
    except json.JSONDecodeError as exc:
        raise JsonLineError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise JsonLineError(f"{where}: nested too deeply") from None
    if not isinstance(record, dict):
        raise JsonLineError(f"{where}: expected a JSON object, got {_json_kind(record)}")
    if invalid:
        key, what = _field_holding(record, _Invalid)
        raise JsonLineError(f"{where}: field {key!r} holds {what}")
    if _SURROGATE_ESCAPE.search(raw):  # only `\\udXXX` escapes can make a lone surrogate
        bad = _lone_surrogate_field(record)
        if bad is not None:
            raise JsonLineError(
                f"{where}: field {bad!r} holds a lone surrogate escape (\\ud800-\\udfff "
                "without its pair), which is not text"
            )
    return record


class _Invalid:
    """Stands in, while parsing, for a value a JSON line may not hold (said by `what`)."""

    def __init__(self, what: str):
        self.what = what

    def __str__(self) -> str:
        return self.what


def _field_holding(record: dict, kind: type) -> tuple[str, object]:
    """The first top-level field whose value holds an instance of `kind` at any depth, and
    that instance (walked with a stack: the parser already allowed the depth)."""
    for key, value in record.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, kind):
                return key, item
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    raise AssertionError("no field holds it")  # only called when the parser saw one


def _json_kind(value) -> str:
    kinds = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _lone_surrogate_field(record: dict) -> str | None:
    """The top-level field holding a lone surrogate (in its value or its name), else None."""
    for key, value in record.items():
        try:
            json.dumps([key, value], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return key
    return None
