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
(Countdown, `checkers.check`), and the reasoning-gym problems, whose family's own scorer runs
in the same pool with the same limits (`score_answers`; `min_score` is what counts as
correct). The `answer` filter and the methods that must know whether an
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
from typing import NamedTuple

from pebble import ProcessExpired, ProcessPool
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.checkers import check, is_scored
from reasonfactory.generators.verify.exact import read_number
from reasonfactory.generators.verify.gym_checker import score_gym, warm


@dataclass(frozen=True)
class PoolOptions:
    """Limits of the checker pool (the `answer` filter's options carry them)."""

    timeout_s: float = 5.0  # wall-clock limit of one check
    workers: int | None = None  # checker processes (default: the machine's cores)
    memory_mb: int = 2048  # memory one check may add to its worker
    batch: int = 64  # checks sent to a worker at a time
    approximate: bool = False  # a decimal may match an exact gold it rounds (answer.py)
    min_score: float = 1.0  # a scored check (reasoning-gym) is correct at this score or more


class Checked(NamedTuple):
    """One check's verdict, how it was reached, and a scorer's score (None: not scored)."""

    outcome: Outcome
    why: str
    score: float | None = None


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


def _check_group(
    gold: str, preds: list[str], timeout_s: float, approximate: bool = False
) -> list[tuple[str, str]]:
    out = []
    for pred in preds:
        if _GOLDS.get(gold) is _GOLD_TIMED_OUT:
            out.append((Outcome.TIMEOUT.value, "the gold's parse timed out"))
            continue
        why: list[str] = []
        try:
            outcome = _timed(
                lambda p=pred, w=why: check_answer(
                    gold, p, golds=_GOLDS, approximate=approximate, why=w, **_NO_TIMEOUTS
                ),
                timeout_s,
            )
        except _CheckTimeout:
            outcome, why = Outcome.TIMEOUT, [f"the check ran past {timeout_s} s"]
            if gold not in _GOLDS and read_number(gold) is None:
                _GOLDS[gold] = _GOLD_TIMED_OUT  # the gold parse itself hangs: once is enough
        except Exception as exc:  # MemoryError, RecursionError, a parser bug: this check only
            outcome, why = Outcome.ERROR, [f"the check failed: {type(exc).__name__}"]
        out.append(Checked(outcome, "; ".join(why)))
    return out


def _check_batch(
    groups: list[tuple[str, list[str]]], timeout_s: float, approximate: bool = False
) -> list[list[Checked]]:
    return [_check_group(gold, preds, timeout_s, approximate) for gold, preds in groups]


def _score_group(key: tuple[str, str], preds: list[str], timeout_s: float, min_score: float):
    checker, gold = key
    out = []
    for pred in preds:
        try:
            score, why = _timed(lambda p=pred: score_gym(checker, gold, p), timeout_s)
        except _CheckTimeout:
            out.append(Checked(Outcome.TIMEOUT, f"the check ran past {timeout_s} s"))
            continue
        except Exception as exc:  # a scorer's bug or a blow-up: this check only
            out.append(Checked(Outcome.ERROR, f"the check failed: {type(exc).__name__}"))
            continue
        ok = score >= min_score
        why = f"{why}: score {score:g} (correct from {min_score:g})"
        out.append(Checked(Outcome.CORRECT if ok else Outcome.WRONG, why, score))
    return out


def _score_batch(groups, timeout_s: float, min_score: float) -> list[list[Checked]]:
    return [_score_group(key, preds, timeout_s, min_score) for key, preds in groups]


def check_answers(
    pairs: Iterable[tuple[str | None, str | None]], options: PoolOptions | None = None
) -> list[Outcome]:
    """Check many (gold, predicted) pairs in worker processes; one outcome per pair.

    A pair with no gold is `gold_unparseable`; no prediction is `wrong`. Safe to call from
    any thread.

    >>> check_answers([("2", "2.0"), ("2", "3"), ("2", None)])
    [<Outcome.CORRECT: 'correct'>, <Outcome.WRONG: 'wrong'>, <Outcome.WRONG: 'wrong'>]
    """
    return [c.outcome for c in _pooled(pairs, options or PoolOptions(), scored=False)]


def explain_answers(
    pairs: Iterable[tuple[str | None, str | None]], options: PoolOptions | None = None
) -> list[tuple[Outcome, str]]:
    """`check_answers` with one line per pair saying how the verdict was reached.

    >>> explain_answers([("\\\\sqrt{2}", "1.414214")])[0][1].startswith("a decimal approx")
    True
    """
    return [(c.outcome, c.why) for c in _pooled(pairs, options or PoolOptions(), scored=False)]


def score_answers(
    triples: Iterable[tuple[str, str | None, str | None]], options: PoolOptions | None = None
) -> list[Checked]:
    """Score (checker, gold, predicted) triples of reasoning-gym problems in worker
    processes (gym_checker.py), with the pool's limits; correct from `options.min_score`.

    >>> from reasonfactory.generators.verify.gym_checker import gym_spec
    >>> spec = gym_spec("countdown", {}, {"numbers": [4, 6], "target": 24})
    >>> [c.outcome.value for c in score_answers([(spec, "4*6", "6*4"), (spec, "4*6", "4+6")])]
    ['correct', 'wrong']
    """
    opts = options or PoolOptions()
    return _pooled(((None if g is None else (c, g), p) for c, g, p in triples), opts, True)


def _pooled(pairs, opts: PoolOptions, scored: bool) -> list[Checked]:
    """Check (key, predicted) pairs, each distinct pair once: key is a gold (math-verify) or,
    `scored`, a (checker, gold) pair."""
    pairs = list(pairs)
    results: dict[tuple, Checked] = {}
    by_gold: dict = {}
    for gold, pred in pairs:
        if gold is None or pred is None or not pred.strip():
            continue
        key = (gold, pred)
        if key not in results:
            results[key] = Checked(Outcome.ERROR, "not checked")  # placeholder until checked
            by_gold.setdefault(gold, []).append(pred)
    if by_gold and scored:
        warm(checker for checker, _ in by_gold)  # forked workers inherit the built scorers
        _run_pool(by_gold, opts, results, _score_batch, (opts.timeout_s, opts.min_score))
    elif by_gold:
        _run_pool(by_gold, opts, results, _check_batch, (opts.timeout_s, opts.approximate))
    out = []
    for gold, pred in pairs:
        if gold is None:
            out.append(Checked(Outcome.GOLD_UNPARSEABLE, "no gold"))
        elif pred is None or not pred.strip():
            out.append(Checked(Outcome.WRONG, "no prediction", 0.0 if scored else None))
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


def _run_pool(by_gold, opts: PoolOptions, results: dict, batch_fn, args: tuple) -> None:
    workers = opts.workers or max(1, os.cpu_count() or 1)
    batches = _batches(by_gold, opts.batch)
    workers = min(workers, len(batches))
    # fork: workers start in milliseconds with math-verify already imported, here, at the
    # first check (not when the run's modules load: sympy takes seconds, and a run's first
    # request should not wait for it), never inside a check's time limit. Each pool lives
    # for one call, so a worker never outlives the frame it checks.
    import math_verify  # noqa: F401

    context = multiprocessing.get_context("fork")
    with ProcessPool(
        max_workers=workers, initializer=_init_worker, initargs=(opts.memory_mb,), context=context
    ) as pool:
        futures = [
            pool.schedule(
                batch_fn,
                args=(batch, *args),
                timeout=_hard_limit(opts.timeout_s, sum(len(p) for _, p in batch)),
            )
            for batch in batches
        ]
        retry = []
        for batch, future in zip(batches, futures, strict=True):
            try:
                for (gold, preds), outcomes in zip(batch, future.result(), strict=True):
                    for pred, checked in zip(preds, outcomes, strict=True):
                        results[(gold, pred)] = checked
            except (FutureTimeout, ProcessExpired):
                retry.extend((gold, pred) for gold, preds in batch for pred in preds)
        singles = [
            (
                pair,
                pool.schedule(
                    batch_fn,
                    args=([(pair[0], [pair[1]])], *args),
                    timeout=_hard_limit(opts.timeout_s, 1),
                ),
            )
            for pair in retry
        ]
        for pair, future in singles:
            try:
                results[pair] = future.result()[0][0]
            except FutureTimeout:
                results[pair] = Checked(Outcome.TIMEOUT, "the check hung and was killed")
            except ProcessExpired:
                results[pair] = Checked(Outcome.ERROR, "the checker process died")


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
    return [o for o, _ in judge_answers_explained(golds, preds, checkers, options)]


def judge_answers_explained(
    golds: list[str | None],
    preds: list[str | None],
    checkers: list[str | None] | None = None,
    options: PoolOptions | None = None,
) -> list[tuple[Outcome, str]]:
    """`judge_answers` with how each verdict was reached (what `reasonfactory check answers`
    prints)."""
    return [(c.outcome, c.why) for c in judge_answers_scored(golds, preds, checkers, options)]


def judge_answers_scored(
    golds: list[str | None],
    preds: list[str | None],
    checkers: list[str | None] | None = None,
    options: PoolOptions | None = None,
) -> list[Checked]:
    """`judge_answers_explained` with the score of each scored check (reasoning-gym's
    partial credit; None for the others)."""
    checkers = checkers or [None] * len(golds)
    pairs = [
        (g, p) if c is None else (None, None)
        for g, p, c in zip(golds, preds, checkers, strict=True)
    ]
    outcomes = _pooled(pairs, options or PoolOptions(), scored=False)
    rows = [
        i
        for i, (g, c) in enumerate(zip(golds, checkers, strict=True))
        if is_scored(c) and g is not None
    ]
    scores = dict(
        zip(
            rows,
            score_answers([(checkers[i], golds[i], preds[i]) for i in rows], options),
            strict=True,
        )
    )
    out = []
    for i, (gold, pred, checker) in enumerate(zip(golds, preds, checkers, strict=True)):
        outcome = outcomes[i]
        if i in scores:
            outcome = scores[i]
        elif checker is not None and gold is not None:
            ok = check(checker, gold, pred)
            outcome = Checked(Outcome.CORRECT if ok else Outcome.WRONG, f"by the rule {checker}")
        out.append(outcome)
    return out
