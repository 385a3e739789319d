"""Many answer checks in a killable process pool: what every caller of untrusted answers uses.

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

`judge_answers` adds the problems checked by a rule rather than by equality with the gold
(Countdown, `checkers.check`). The `answer` filter and the methods that must know whether an
answer is right (journey's base traces) both call it. It lives here, below the methods and
the filters, because both need it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from pebble import ProcessExpired, ProcessPool
from reasonfactory.generators.verify.answer import Outcome, _literal, check_answer
from reasonfactory.generators.verify.checkers import check


@dataclass(frozen=True)
class PoolOptions:
    """Limits of the checker pool (the `answer` filter's options carry them)."""

    timeout_s: float = 5.0  # wall-clock limit of one check
    workers: int | None = None  # checker processes (default: the machine's cores)
    memory_mb: int = 2048  # memory one check may add to its worker
    batch: int = 64  # checks sent to a worker at a time


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
    pairs: Iterable[tuple[str | None, str | None]], options: PoolOptions | None = None
) -> list[Outcome]:
    """Check many (gold, predicted) pairs in worker processes; one outcome per pair.

    A pair with no gold is `gold_unparseable`; no prediction is `wrong`. Safe to call from
    any thread.

    >>> check_answers([("2", "2.0"), ("2", "3"), ("2", None)])
    [<Outcome.CORRECT: 'correct'>, <Outcome.WRONG: 'wrong'>, <Outcome.WRONG: 'wrong'>]
    """
    opts = options or PoolOptions()
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


def _run_pool(by_gold, opts: PoolOptions, results: dict) -> None:
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


def judge_answers(
    golds: list[str | None],
    preds: list[str | None],
    checkers: list[str | None] | None = None,
    options: PoolOptions | None = None,
) -> list[Outcome]:
    """One outcome per trace: a `checker` spec decides where given (Countdown), the gold
    comparison (in the pool) everywhere else.

    >>> judge_answers(["24", "2"], ["4 * 6", "3"], ["countdown:4,6", None])
    [<Outcome.CORRECT: 'correct'>, <Outcome.WRONG: 'wrong'>]
    """
    checkers = checkers or [None] * len(golds)
    pairs = [
        (g, p) if c is None else (None, None)
        for g, p, c in zip(golds, preds, checkers, strict=True)
    ]
    outcomes = check_answers(pairs, options)
    out = []
    for gold, pred, checker, outcome in zip(golds, preds, checkers, outcomes, strict=True):
        if checker is not None and gold is not None:
            outcome = Outcome.CORRECT if check(checker, gold, pred) else Outcome.WRONG
        out.append(outcome)
    return out
