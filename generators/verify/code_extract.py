"""Which part of a model's reply is the program: `extract_code(text, how)`.

A code trace's answer is the last fenced code block after `</think>` (a python-tagged block
wins over an untagged one; a block in another language is never a program); `how` changes
that: `first_block`, `whole` (all the text), `auto` (the last block, or all the text when it
is a bare program with no fence and no think tags). Kept apart from `code_tests.py`, which
runs what this returns, so the prompts (`generators.prompts`) can read a code answer
without the sandbox.
"""

from __future__ import annotations

import re
from typing import Literal

Extract = Literal["last_block", "first_block", "whole", "auto"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def extract_code(text: str | None, how: Extract = "last_block") -> str | None:
    """The program in a reply: by default the last fenced code block after `</think>` (a
    python-tagged block before an untagged one; other languages never); None when there is
    none. `whole`: all the text; `auto`: the last block, or all the text when it has no
    fence and no think tags (a bare program).

    >>> extract_code("<think>```python\\nx = 1\\n```</think>\\nDone:\\n```python\\nprint(2)\\n```")
    'print(2)\\n'
    >>> extract_code("<think>```python\\nx = 1\\n```</think> no code") is None
    True
    """
    if text is None:
        return None
    if how == "whole":
        return text
    bare = "<think>" not in text and "</think>" not in text
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    elif "<think>" in text:
        return None  # the thought never closed: there is no answer
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    python = [code for tag, code in blocks if tag in _PYTHON_TAGS]
    plain = [code for tag, code in blocks if not tag]
    chosen = python or plain
    if chosen:
        return chosen[0] if how == "first_block" else chosen[-1]
    if how == "auto" and bare and "```" not in text and text.strip():
        return text
    return None
