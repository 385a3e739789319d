"""The `predictions` engine: a file of a model's outputs served as if the model answered.

A JSONL file, one sample per line: `problem_id` or `question` (which problem), `response` (the
model's output as written, thinking and all) and, optionally, `reasoning` (thinking a server
returned apart from the answer) and `n_tokens`. A problem's lines are its samples, in file
order. For each request the engine reads the question out of the solve prompt
(`prompts.question_of`) and returns that problem's samples `first_sample .. first_sample + n - 1`,
so a file goes through the same parsing, answer check, storage and metrics as a served model
(`reasonfactory eval --predictions`). Sampling settings are ignored: the samples are drawn.

`read_predictions` checks a whole file before anything runs: a line over 1 MB, not UTF-8, not
JSON (`problems.jsonl` reads every line the way `import` does), a field that is missing or
not text is an error naming the file, the line and the field; every bad line is named.

Not here: matching lines to a problem set (flows/evaluate.py checks that every problem of the
eval has its samples and every line names a problem of it).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from reasonfactory.generators.engines.base import (
    Completion,
    EngineError,
    GenRequest,
    OnSample,
    SampleFeed,
    WholeBatches,
)
from reasonfactory.generators.problems.jsonl import MAX_LINE_BYTES, JsonLineError, read_jsonl
from reasonfactory.generators.prompts import question_of
from reasonfactory.warehouse.errors import BadLines, UserError
from reasonfactory.warehouse.ids import normalise_question, problem_id


@dataclass(frozen=True)
class Prediction:
    """One line of a predictions file (`line` counts from 1)."""

    line: int
    problem_id: str | None
    question: str | None
    response: str
    reasoning: str | None = None
    n_tokens: int = 0


def file_digest(path: str | Path) -> str:
    """Hash of a file's bytes: a changed file is another eval, not a resumed one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the predictions file ({exc.strerror})") from None
    return hashlib.sha256(data).hexdigest()[:24]


def _text(record: dict, key: str, where: str, required: bool) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise UserError(f"{where}: field {key!r} is missing")
        return None
    if not isinstance(value, str):
        raise UserError(f"{where}: field {key!r} must be text, not {type(value).__name__}")
    return value


def read_predictions(path: str | Path) -> list[Prediction]:
    """Every line of a predictions file, checked whole; blank lines are skipped. Every bad
    line is reported together in one `BadLines` (the first `BadLines.MAX_REPORTED` named).

    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "p.jsonl")
    >>> _ = open(f, "w").write('{"question": "1 + 1?", "response": "2"}\\n{"id": 3}\\n')
    >>> read_predictions(f)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    reasonfactory.warehouse.errors.BadLines: ...p.jsonl:2: field 'problem_id' (or ...) is missing
    ...p.jsonl: 1 bad line(s); nothing was stored
    """
    file_digest(path)  # a missing or unreadable file: one clear error
    out, bad = [], []
    with open(path, "rb") as fh:
        for number, record in read_jsonl(fh, lambda n: f"{path}:{n}", MAX_LINE_BYTES):
            if isinstance(record, JsonLineError):
                bad.append(str(record))
                continue
            try:
                out.append(_prediction(record, number, f"{path}:{number}"))
            except UserError as exc:
                bad.append(str(exc))
    if bad:
        raise BadLines(bad, f"{path}: {len(bad)} bad line(s); nothing was stored")
    if not out:
        raise UserError(f"{path}: no predictions in it")
    return out


def _prediction(record: dict, number: int, where: str) -> Prediction:
    pid = _text(record, "problem_id", where, required=False)
    question = _text(record, "question", where, required=False)
    if not pid and not question:
        raise UserError(f"{where}: field 'problem_id' (or 'question') is missing")
    response = _text(record, "response", where, required=True)
    reasoning = _text(record, "reasoning", where, required=False)
    n_tokens = record.get("n_tokens", 0)
    if n_tokens is None:
        n_tokens = 0
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
        raise UserError(f"{where}: field 'n_tokens' must be a count, not {str(n_tokens)[:40]!r}")
    return Prediction(number, pid, question, response, reasoning, n_tokens)


class PredictionsEngine(WholeBatches):
    """Serves the samples of a predictions file; `sources` are the problem sources its
    `problem_id`s were made with (to match a prompt's question to them)."""

    def __init__(self, path: str, model: str, sources: tuple[str, ...], digest: str = ""):
        self.model = model
        self.path = path
        self.sources = tuple(sources)
        if digest and file_digest(path) != digest:
            raise EngineError(f"{path} changed since this eval started; run the eval again")
        self.samples: dict[str, list[Prediction]] = defaultdict(list)
        for p in read_predictions(path):
            key = p.problem_id or "q:" + normalise_question(p.question or "")
            self.samples[key].append(p)

    def _find(self, question: str) -> list[Prediction]:
        keys = ["q:" + normalise_question(question)]
        keys += [problem_id(s, question) for s in self.sources]
        return sorted((p for k in keys for p in self.samples.get(k, ())), key=lambda p: p.line)

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        out = []
        for req in requests:
            question = question_of(req.user_text())
            found = self._find(question) if question is not None else []
            chosen = found[req.first_sample : req.first_sample + req.n]
            if len(chosen) < req.n:
                raise EngineError(
                    f"{self.path}: {len(found)} responses for the problem "
                    f"{(question or req.user_text())[:80]!r}; samples {req.first_sample}.."
                    f"{req.first_sample + req.n - 1} were asked for"
                )
            out.append(
                [Completion(p.response, reasoning=p.reasoning, n_tokens=p.n_tokens) for p in chosen]
            )
        feed = SampleFeed(on_sample)
        feed.send_all(out)
        feed.raise_first()
        return out
