"""Answer check: math-verify against the gold answer, in a killable process pool.

Outcomes: `correct`, `wrong`, `gold_unparseable` (the gold itself cannot be read as math,
so the trace says nothing about the model), and two that mean "no verdict": `timeout`
(the check ran past its wall-clock limit) and `error` (it crashed or blew its memory).

How a check is contained (math-verify issues #50 #55 #63 #65 hang or blow up on some
inputs, and its `signal.alarm` timeouts only work on a main thread; Prefect runs tasks in
threads):
- `check_answers` dedupes the (gold, predicted) pairs, groups them by gold and sends
  batches to a pebble `ProcessPool` (fork): each gold is parsed once per worker.
- In the worker (a main thread) every check runs under its own `setitimer` wall-clock
  limit, with math-verify's own timeouts off; an address-space limit turns a memory
  blow-up into a `MemoryError` for that check only.
- A batch that overruns anyway (a hang in C code ignores signals) is killed by pebble and
  its checks are retried one per task, each with a hard limit: the culprit gets `timeout`,
  the others their verdict.

Known false positives of math-verify 0.9.0 that a guard here turns into `wrong` (Math-Verify
issue #14): tiny values compared by absolute rounding (`1/2004!` vs `1/2006!`,
`1/2^99` vs `1/2^98`), a `\\pm` answer against one of its signs (`\\pm 2021` vs `2021`,
fixed upstream but guarded), and sequences with `\\ldots`, which it parses to one number
(they are compared as written, normalised). And one false negative: a dropped percent sign
on a decimal (`12.5\\%` vs `12.5`; math-verify forgives it on integers only).

Not here: which traces to check (the filter reads `gold`, `predicted`, `gold_source`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import resource
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from enum import StrEnum
from fractions import Fraction

import polars as pl
from math_verify import parse, verify
from pebble import ProcessExpired, ProcessPool
from pydantic import Field

from generators.answers import answer_key
from generators.base import StrictModel
from generators.checkers import check


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    GOLD_UNPARSEABLE = "gold_unparseable"
    TIMEOUT = "timeout"
    ERROR = "error"


class AnswerOptions(StrictModel):
    """`answer` filter options (all optional)."""

    timeout_s: float = Field(5.0, gt=0, description="wall-clock limit of one check")
    workers: int | None = Field(
        None, ge=1, description="checker processes (default: the machine's cores)"
    )
    memory_mb: int = Field(2048, ge=64, description="memory one check may add to its worker")
    batch: int = Field(64, ge=1, description="checks sent to a worker at a time")


REASONS = {
    Outcome.WRONG: "wrong_answer",
    Outcome.GOLD_UNPARSEABLE: "gold_unparseable",
    Outcome.TIMEOUT: "check_timeout",
    Outcome.ERROR: "check_error",
}


# -- one check, in-process --------------------------------------------------------------


def _timeouts() -> dict:
    # math-verify's own signal.alarm timeouts only work on a main thread; elsewhere they
    # are turned off and the caller (the pool) is the one that times out.
    if threading.current_thread() is threading.main_thread():
        return {}
    return {"parsing_timeout": None}


def parse_answer(answer: str, **timeouts):
    """math-verify's parse of a bare answer (wrapped as a boxed expression)."""
    return parse(f"\\boxed{{{answer}}}", **(timeouts or _timeouts()))


def check_answer(
    gold: str, predicted: str | None, *, parsed_gold=None, golds: dict | None = None, **timeouts
) -> Outcome:
    """Compare a predicted final answer with the gold one (in this process, no time limit
    of its own off the main thread: use `check_answers` for untrusted text at scale).

    `golds` caches parsed golds across calls (gold text -> parse); a plain number or
    fraction on both sides is compared exactly without parsing (math-verify's LaTeX parser
    costs ~5 ms a call).

    >>> check_answer("\\\\frac{1}{2}", "0.5")
    <Outcome.CORRECT: 'correct'>
    >>> check_answer("3", "4")
    <Outcome.WRONG: 'wrong'>
    """
    timeouts = timeouts or _timeouts()
    golds = {} if golds is None else golds
    if parsed_gold is not None:
        golds[gold] = parsed_gold

    def gold_parse():
        if gold not in golds:
            golds[gold] = parse_answer(gold, **timeouts)
        return golds[gold]

    g = _literal(gold)
    if g is None and not gold_parse():
        return Outcome.GOLD_UNPARSEABLE
    if predicted is None or not predicted.strip():
        return Outcome.WRONG
    if predicted.strip() == gold.strip():
        return Outcome.CORRECT
    p = _literal(predicted)
    if g is not None and p is not None:
        if g[0] == p[0]:
            return Outcome.CORRECT
        if g[1] and p[1]:  # two different exact rationals are different numbers
            return Outcome.WRONG
    if any(e in gold or e in predicted for e in _ELLIPSIS):
        # Sequences with dots parse to junk ("1, 2, \ldots, n" -> 2): only the same written
        # sequence counts.
        return Outcome.CORRECT if answer_key(gold) == answer_key(predicted) else Outcome.WRONG
    gold_parsed = gold_parse()
    pred_parsed = parse_answer(predicted, **timeouts)
    if not pred_parsed:
        return Outcome.WRONG
    percent = "%" in gold or "%" in predicted
    if not percent and _apart(gold_parsed, pred_parsed):
        return Outcome.WRONG  # two different numbers: skip math-verify's slow simplify
    verify_timeout = {"timeout_seconds": None} if "parsing_timeout" in timeouts else {}
    if not verify(gold_parsed, pred_parsed, **verify_timeout):
        if ("%" in gold) == ("%" in predicted):
            return Outcome.WRONG
        # math-verify forgives a dropped percent sign on integers only (50\% vs 50, not
        # 12.5\% vs 12.5): compare the numbers without it.
        bare = [parse_answer(_strip_percent(x), **timeouts) for x in (gold, predicted)]
        if not all(bare) or not verify(*bare, **verify_timeout):
            return Outcome.WRONG
        return Outcome.CORRECT
    return Outcome.CORRECT if _guard(gold, predicted, gold_parsed, pred_parsed) else Outcome.WRONG


_INT = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}|(-?\d+)/(\d+)")


def _literal(answer: str | None) -> tuple[Fraction, bool] | None:
    """A plain integer, decimal or integer fraction as (value, exact), else None.

    >>> _literal("-\\\\frac{3}{4}"), _literal("0.5"), _literal("x")
    ((Fraction(-3, 4), True), (Fraction(1, 2), False), None)
    """
    if answer is None:
        return None
    a = answer.strip().strip("$").strip()
    if len(a) > 40:
        return None
    if _INT.fullmatch(a):
        return Fraction(int(a)), True
    if _DECIMAL.fullmatch(a):
        return Fraction(a), False
    m = _FRAC.fullmatch(a)
    if m:
        sign, num, den = (m[1], m[2], m[3]) if m[2] else ("", m[4], m[5])
        if int(den) == 0:
            return None
        return Fraction(int(sign + num), int(den)), True
    return None


def _apart(gold_parsed, pred_parsed) -> bool:
    """Both sides are real numbers and they differ (relatively, beyond 1e-6)."""
    g, p = _number(_first_expr(gold_parsed)), _number(_first_expr(pred_parsed))
    if g is None or p is None:
        return False
    return abs(g - p) > _REL_TOL * max(abs(g), abs(p))


def _strip_percent(answer: str) -> str:
    return answer.replace("\\%", "").replace("%", "").strip()


_ELLIPSIS = ("\\ldots", "\\cdots", "\\dots", "...")
_PM = ("\\pm", "\\mp", "±")
# math-verify rounds both sides to 6 decimals, so every value under 5e-7 equals every other;
# values that agree must also agree relatively.
_REL_TOL = 1e-6


def _guard(gold: str, predicted: str, gold_parsed, pred_parsed) -> bool:
    """Second look at a math-verify "equal": False for its known false positives."""
    if any(p in gold for p in _PM) != any(p in predicted for p in _PM):
        g, p = _first_expr(gold_parsed), _first_expr(pred_parsed)
        return _set_size(g) == _set_size(p)
    if "%" in gold or "%" in predicted:
        return True  # math-verify's percent leniency (50\% vs 50) is intended
    g, p = _number(_first_expr(gold_parsed)), _number(_first_expr(pred_parsed))
    if g is None or p is None:
        return True
    if g == p:
        return True
    return abs(g - p) <= _REL_TOL * max(abs(g), abs(p))


def _first_expr(parsed):
    return next((x for x in parsed if not isinstance(x, str)), None)


def _set_size(expr) -> int:
    from sympy import FiniteSet

    rhs = getattr(expr, "rhs", expr)  # x = \pm 2
    return len(rhs) if isinstance(rhs, FiniteSet) else 1


def _number(expr):
    """A real number's value at 30 digits (an mpmath float), or None for anything else."""
    from sympy import Basic

    if not isinstance(expr, Basic) or not getattr(expr, "is_number", False):
        return None
    try:
        value = expr.evalf(30)
        if not value.is_real or not value.is_finite:
            return None
        return value
    except Exception:  # a value sympy cannot evaluate is not a number for this guard
        return None


# -- many checks, in a killable pool ------------------------------------------------------


class _CheckTimeout(BaseException):
    # BaseException: math-verify and sympy catch Exception and would swallow the timeout.
    pass


def _on_alarm(signum, frame):
    raise _CheckTimeout


_GOLDS: dict[str, object] = {}


def _init_worker(memory_mb: int) -> None:
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)
    signal.signal(signal.SIGALRM, _on_alarm)
    _GOLDS.clear()
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = used + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError):
        pass  # no /proc or no rlimit: the hard timeout still contains a blow-up


def _timed(fn, timeout_s: float):
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


_NO_TIMEOUTS = {"parsing_timeout": None}


_GOLD_TIMED_OUT = object()


def _check_group(gold: str, preds: list[str], timeout_s: float) -> list[str]:
    out = []
    for pred in preds:
        if _GOLDS.get(gold) is _GOLD_TIMED_OUT:
            out.append(Outcome.TIMEOUT.value)
            continue
        try:
            outcome = _timed(
                lambda p=pred: check_answer(gold, p, golds=_GOLDS, **_NO_TIMEOUTS), timeout_s
            )
        except _CheckTimeout:
            outcome = Outcome.TIMEOUT
            if gold not in _GOLDS and _literal(gold) is None:
                _GOLDS[gold] = _GOLD_TIMED_OUT  # the gold parse itself hangs: once is enough
        except Exception:  # MemoryError, RecursionError, a parser bug: this check only
            outcome = Outcome.ERROR
        out.append(outcome.value)
    return out


def _check_batch(groups: list[tuple[str, list[str]]], timeout_s: float) -> list[list[str]]:
    return [_check_group(gold, preds, timeout_s) for gold, preds in groups]


def check_answers(
    pairs: Iterable[tuple[str | None, str | None]], options: AnswerOptions | None = None
) -> list[Outcome]:
    """Check many (gold, predicted) pairs in worker processes; one outcome per pair.

    A pair with no gold is `gold_unparseable`; no prediction is `wrong`. Safe to call from
    any thread.

    >>> check_answers([("2", "2.0"), ("2", "3"), ("2", None)])
    [<Outcome.CORRECT: 'correct'>, <Outcome.WRONG: 'wrong'>, <Outcome.WRONG: 'wrong'>]
    """
    opts = options or AnswerOptions()
    pairs = list(pairs)
    results: dict[tuple[str, str], Outcome] = {}
    by_gold: dict[str, list[str]] = {}
    for gold, pred in pairs:
        if gold is None or pred is None or not pred.strip():
            continue
        key = (gold, pred)
        if key not in results:
            results[key] = Outcome.ERROR  # placeholder until checked
            by_gold.setdefault(gold, []).append(pred)
    if by_gold:
        _run_pool(by_gold, opts, results)
    out = []
    for gold, pred in pairs:
        if gold is None:
            out.append(Outcome.GOLD_UNPARSEABLE)
        elif pred is None or not pred.strip():
            out.append(Outcome.WRONG)
        else:
            out.append(results[(gold, pred)])
    return out


def _batches(by_gold: dict[str, list[str]], size: int) -> list[list[tuple[str, list[str]]]]:
    batches, current, n = [], [], 0
    for gold, preds in by_gold.items():
        for start in range(0, len(preds), size):
            chunk = preds[start : start + size]
            if n + len(chunk) > size and current:
                batches.append(current)
                current, n = [], 0
            current.append((gold, chunk))
            n += len(chunk)
    if current:
        batches.append(current)
    return batches


def _run_pool(by_gold, opts: AnswerOptions, results: dict) -> None:
    workers = opts.workers or max(1, os.cpu_count() or 1)
    batches = _batches(by_gold, opts.batch)
    workers = min(workers, len(batches))
    # fork: workers start in milliseconds with math-verify already imported. Each pool lives
    # for one call, so a worker never outlives the frame it checks.
    context = multiprocessing.get_context("fork")
    with ProcessPool(
        max_workers=workers, initializer=_init_worker, initargs=(opts.memory_mb,), context=context
    ) as pool:
        futures = [
            pool.schedule(
                _check_batch,
                args=(batch, opts.timeout_s),
                timeout=_hard_limit(opts.timeout_s, sum(len(p) for _, p in batch)),
            )
            for batch in batches
        ]
        retry = []
        for batch, future in zip(batches, futures, strict=True):
            try:
                for (gold, preds), outcomes in zip(batch, future.result(), strict=True):
                    for pred, outcome in zip(preds, outcomes, strict=True):
                        results[(gold, pred)] = Outcome(outcome)
            except (FutureTimeout, ProcessExpired):
                retry.extend((gold, pred) for gold, preds in batch for pred in preds)
        singles = [
            (
                pair,
                pool.schedule(
                    _check_batch,
                    args=([(pair[0], [pair[1]])], opts.timeout_s),
                    timeout=_hard_limit(opts.timeout_s, 1),
                ),
            )
            for pair in retry
        ]
        for pair, future in singles:
            try:
                results[pair] = Outcome(future.result()[0][0])
            except FutureTimeout:
                results[pair] = Outcome.TIMEOUT
            except ProcessExpired:
                results[pair] = Outcome.ERROR


def _hard_limit(timeout_s: float, n_checks: int) -> float:
    # Past this a batch is killed: the gold parse and a normal run of its checks fit well
    # inside (a check takes ~1 ms); a check stuck where signals cannot reach it does not.
    return 2 * timeout_s + 1.0 + 0.1 * n_checks


# -- the filter ---------------------------------------------------------------------------


def answer_filter(traces: pl.DataFrame, options: AnswerOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `correct` for each trace (reads `gold`, `predicted`,
    `gold_source`). Reasons: wrong_answer, gold_unparseable, check_timeout, check_error,
    no_gold (the problem has none), no_consensus (no gold and no qualified majority)."""
    opts = AnswerOptions.model_validate(options or {})
    golds, preds = traces["gold"].to_list(), traces["predicted"].to_list()
    # Problems whose answers are not checked by equality (Countdown) carry a `checker`.
    n = len(golds)
    checkers = traces["checker"].to_list() if "checker" in traces.columns else [None] * n
    pairs = [
        (g, p) if c is None else (None, None)
        for g, p, c in zip(golds, preds, checkers, strict=True)
    ]
    outcomes = check_answers(pairs, opts)
    ok, reason, correct = [], [], []
    for gold, pred, source, checker, outcome in zip(
        golds, preds, traces["gold_source"], checkers, outcomes, strict=True
    ):
        if gold is None:
            ok.append(False)
            reason.append("no_consensus" if source == "none" else "no_gold")
            correct.append(None)
            continue
        if checker is not None:
            right = check(checker, gold, pred)
            ok.append(right)
            reason.append(None if right else "wrong_answer")
            correct.append(right)
            continue
        ok.append(outcome is Outcome.CORRECT)
        reason.append(REASONS.get(outcome))
        correct.append(
            outcome is Outcome.CORRECT if outcome in (Outcome.CORRECT, Outcome.WRONG) else None
        )
    return pl.DataFrame(
        {"ok": ok, "reason": reason, "correct": correct},
        schema={"ok": pl.Boolean, "reason": pl.String, "correct": pl.Boolean},
    )
