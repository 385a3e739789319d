"""Content-derived identities: the same content always gets the same id.

`problem_id` = hash of source + normalised question; `trace_id` = hash of problem_id, method,
recipe fingerprint and sample index. Ingest skips ids already stored, which is what makes a
re-run add nothing and a killed run resume.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

_WS = re.compile(r"\s+")


def digest(*parts: object, length: int = 16) -> str:
    """A short, stable hex digest of the parts.

    >>> digest("a", 1) == digest("a", 1) != digest("a", 2)
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:length]


def normalise_question(text: str) -> str:
    """NFKC, collapsed whitespace, stripped: formatting noise does not make a new problem."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def problem_id(source: str, question: str) -> str:
    return "p_" + digest(source, normalise_question(question))


def trace_id(problem: str, method: str, fingerprint: str, sample: int) -> str:
    return "t_" + digest(problem, method, fingerprint, sample)


def fingerprint(config: dict) -> str:
    """Hash of a JSON-able config, insensitive to key order."""
    return digest(json.dumps(config, sort_keys=True, default=str))
