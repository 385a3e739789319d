"""The LLM judge of final answers: a model decides what the answer rules cannot.

Recipe: `filters: [{answer: {judge: {engine: {...}, when: undecided|always}}}]`. The rules
(`generators.verify.answer_pool`) decide first. A trace is *undecided* when the rules could
not read or call it: the gold cannot be read as math (`gold_unparseable`), the check timed
out or failed (`timeout`, `error`), or the rules said `wrong` while the gold or the
prediction holds words (`18 dollars`, `five hours`, `the red one`): math-verify reads no
number out of words, so its `wrong` there means "could not compare", not "different".
`when: undecided` (the default) asks the judge about those only; `when: always` asks it about
every trace with a gold and an answer, and its verdict decides (both are recorded, so their
agreement can be measured: `stats`, `report`). Never judged: traces without a gold or
without an answer, code problems (their tests decide), problems with a checker (Countdown,
reasoning-gym: their rule decides).

The prompt (`PROMPT`) gives the question, the gold and the prediction and asks for one word.
The reply is read strictly (`read_verdict`): after an optional `<think>...</think>`, exactly
`CORRECT` or `INCORRECT` with optional whitespace around it. Anything else (a sentence, a
refusal, `Correct.`) is `judge_unparsed`: never a pass. A request that fails after the
engine's retries (500s, timeouts) is `judge_error`: never a pass either, and not cached, so
the next run asks it again. An engine that fails every request of a batch (the server is
down) raises, as a generating engine does: the shard or refilter batch stops, nothing of it
is stored, what was stored before stays.

Every judgement is a completion: `CachedEngine` keys it by content (the judge engine's
settings and the prompt, temperature 0) and stores it with the run's completions, so a
re-run, a refilter or `check answers --judge` over the same warehouse asks nothing twice.
Where no warehouse is at hand, judgements are cached for the life of the process.

Not here: the rules (`generators/verify/`), the answer filter's verdict columns
(`filters/answer.py`), storing (the caller's `judge_store`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

import polars as pl
from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines import ENGINES, GenRequest, make_engine
from reasonfactory.generators.engines.cached import CachedEngine, Lookup, Sink
from reasonfactory.generators.identity import fingerprint, output_settings
from reasonfactory.generators.verify.answer import Outcome

JudgeEngine = Annotated[
    Union[tuple(config for config, _ in ENGINES.values())],  # noqa: UP007
    Field(discriminator="kind"),
]

PROMPT = """You are grading a final answer against the reference answer of a problem.

Problem:
{question}

Reference answer:
{gold}

Answer to grade:
{prediction}

The answer is CORRECT when it means the same as the reference answer: the same value, set or \
statement, whatever its units, wording or format. It is INCORRECT when it differs, is \
missing, or gives several different answers.
Reply with exactly one word: CORRECT or INCORRECT."""

_VERDICT = re.compile(r"\s*(CORRECT|INCORRECT)\s*")
# LaTeX commands (`\frac`, `\text`) are markup, not words; single letters are variables.
_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")


class JudgeOptions(StrictModel):
    """`answer: {judge: {...}}`: the model that decides what the rules cannot."""

    engine: JudgeEngine = Field(description="any engine: openai (a server) or vllm (local)")
    when: Literal["undecided", "always"] = Field(
        "undecided", description="undecided: only what the rules cannot decide; always: all"
    )
    max_tokens: int = Field(1024, ge=1, le=65536, description="room for a reasoning judge")


def read_verdict(reply: str | None) -> Literal["correct", "incorrect"] | None:
    """The judge's verdict, or None when the reply is not exactly one verdict word.

    >>> read_verdict(" CORRECT\\n"), read_verdict("<think>hm</think>\\nINCORRECT")
    ('correct', 'incorrect')
    >>> read_verdict("Correct."), read_verdict("CORRECT, because 18 = 18"), read_verdict("")
    (None, None, None)
    """
    if reply is None:
        return None
    if "<think>" in reply and "</think>" not in reply:
        return None  # thinking cut off: no verdict
    m = _VERDICT.fullmatch(reply.rsplit("</think>", 1)[-1])
    return None if m is None else m.group(1).lower()  # type: ignore[return-value]


def has_words(text: str | None) -> bool:
    """Whether an answer holds words (not only math): `18 dollars` yes, `\\frac{x}{2}` no.

    >>> has_words("18 dollars"), has_words("\\\\frac{x}{2}"), has_words("18 \\\\text{ cm}")
    (True, False, True)
    """
    return bool(text and _WORDS.search(text))


def undecided(outcome: Outcome, gold: str | None, pred: str | None) -> bool:
    """Whether the rules left this answer undecided (module docstring).

    >>> undecided(Outcome.WRONG, "18", "eighteen dollars"), undecided(Outcome.WRONG, "18", "17")
    (True, False)
    """
    if outcome in (Outcome.GOLD_UNPARSEABLE, Outcome.TIMEOUT, Outcome.ERROR):
        return True
    return outcome is Outcome.WRONG and (has_words(gold) or has_words(pred))


def judge_request(question: str, gold: str, prediction: str, max_tokens: int) -> GenRequest:
    """The request for one judgement: temperature 0 and a fixed seed, so its content key is
    the same in every run."""
    text = PROMPT.format(
        question=question.strip(), gold=gold.strip(), prediction=prediction.strip()
    )
    return GenRequest(
        messages=({"role": "user", "content": text},),
        temperature=0.0,
        max_tokens=max_tokens,
        seed=0,
    )


@dataclass(frozen=True)
class Judgement:
    """One judgement: `verdict` correct | incorrect | judge_unparsed | judge_error, the reply
    as returned (an error's reason), and whether it came from the cache."""

    verdict: str
    reply: str
    cached: bool = False


@dataclass
class JudgeStore:
    """Where judgements are looked up and stored (a run's completions table), and the fresh
    ones no sink took (the caller stores them: `fresh()`)."""

    lookup: Lookup | None = None
    sink: Sink | None = None
    rows: list[pl.DataFrame] = field(default_factory=list)
    asked: int = 0  # requests sent to the engine
    reused: int = 0  # judgements served from the store

    def fresh(self) -> pl.DataFrame | None:
        """Judgements made here that no sink took, as `completions` rows (then forgets them)."""
        rows, self.rows = self.rows, []
        return pl.concat(rows) if rows else None


_STORE: ContextVar[JudgeStore | None] = ContextVar("judge_store", default=None)
_MEMO: dict[str, pl.DataFrame] = {}  # without a store: this process's judgements, by key
_ENGINES: dict[str, object] = {}
_LOCK = threading.Lock()


@contextmanager
def judge_store(lookup: Lookup | None, sink: Sink | None) -> Iterator[JudgeStore]:
    """Judgements made inside are looked up with `lookup` and handed to `sink` (or kept in
    the store's `fresh()` when `sink` is None)."""
    store = JudgeStore(lookup, sink)
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)
        # Contexts copied meanwhile (the engine's event-loop tasks) may outlive this block:
        # they must not keep the caller's warehouse connection alive.
        store.lookup = store.sink = None


def _engine(options: JudgeOptions):
    # One engine per judge config in a process: a local vllm model loads once, not per shard.
    key = options.engine.model_dump_json()
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = make_engine(options.engine)
        return _ENGINES[key]


def _memo_lookup(keys: list[str]) -> pl.DataFrame:
    from reasonfactory.warehouse.schema import COMPLETIONS

    found = [_MEMO[k] for k in keys if k in _MEMO]
    return pl.concat(found) if found else pl.DataFrame(schema=COMPLETIONS.polars_schema)


def _memo_sink(rows: list[dict]) -> None:
    from reasonfactory.warehouse.schema import COMPLETIONS

    for row in rows:
        _MEMO[row["request_key"]] = pl.DataFrame([row], schema=COMPLETIONS.polars_schema)


def ask_judge(items: list[tuple[str, str, str]], options: JudgeOptions) -> list[Judgement]:
    """Judge (question, gold, prediction) triples, each distinct triple once, through the
    cache (`judge_store`, else this process's memory)."""
    if not items:
        return []
    store = _STORE.get()
    lookup = store.lookup if store else _memo_lookup
    sink = store.sink if store else _memo_sink
    engine_id = "judge_" + fingerprint(output_settings(options.engine))
    cached = CachedEngine(_engine(options), engine_id, lookup, sink)
    distinct = list(dict.fromkeys(items))
    requests = [judge_request(q, g, p, options.max_tokens) for q, g, p in distinct]
    try:
        replies = cached.generate(requests)
    finally:
        # The engine outlives this call (one per config) and may hold its last callback:
        # it must not keep the caller's warehouse connection alive through `lookup`.
        cached.lookup = cached.sink = None
    if store is not None:
        fresh = cached.take_fresh()
        if fresh.height:
            store.rows.append(fresh)
        store.reused += cached.reused
        store.asked += len(requests) - cached.reused
    by_item = {}
    for item, (c,) in zip(distinct, replies, strict=True):
        reused = bool(c.meta.get("reused"))
        if c.finish_reason == "error":
            by_item[item] = Judgement("judge_error", str(c.meta.get("error", "")), reused)
        else:
            verdict = read_verdict(c.text if c.finish_reason == "stop" else None)
            by_item[item] = Judgement(verdict or "judge_unparsed", c.text, reused)
    return [by_item[i] for i in items]


@dataclass(frozen=True)
class JudgedRow:
    """The judge's part of one trace's answer verdict: who decided (`by`: rule | judge), the
    rules' outcome (`undecided` for a `wrong` they could not compare) and the judge's
    verdict (None: not asked)."""

    by: str
    rule: str
    judge: str | None = None


def judge_answers(
    questions: list[str | None],
    golds: list[str | None],
    preds: list[str | None],
    outcomes: list[Outcome | None],
    options: JudgeOptions,
) -> list[JudgedRow | None]:
    """Per trace, what the judge adds (None: not for the judge: no gold, no answer, or an
    outcome of None, which a code or checker problem has). `when: undecided` asks only
    `undecided` traces; `always` asks every one and its verdict decides."""
    rows: list[JudgedRow | None] = []
    ask: dict[int, tuple[str, str, str]] = {}
    for i, (q, g, p, o) in enumerate(zip(questions, golds, preds, outcomes, strict=True)):
        if o is None or g is None or not (p or "").strip():
            rows.append(None)
            continue
        unsure = undecided(o, g, p)
        # a `wrong` the rules could not compare (words) is recorded as `undecided`
        rule = "undecided" if unsure and o is Outcome.WRONG else o.value
        rows.append(JudgedRow("rule", rule))
        if options.when == "always" or unsure:
            ask[i] = (q or "", g, p)
    answers = ask_judge(list(ask.values()), options)
    for i, judgement in zip(ask, answers, strict=True):
        rows[i] = JudgedRow("judge", rows[i].rule, judgement.verdict)
    return rows
