"""The answer filter: a regression table of hard pairs, the killable pool, worker threads."""

from __future__ import annotations

import json
import signal
import threading
import time
from unittest.mock import patch

import polars as pl
import pytest
import reasonfactory.generators.verify.answer as answer
from reasonfactory.filters.answer import answer_filter
from reasonfactory.generators.verify.answer import Outcome, check_answer
from reasonfactory.generators.verify.answer_pool import PoolOptions, check_answers

C, W, G = Outcome.CORRECT, Outcome.WRONG, Outcome.GOLD_UNPARSEABLE
# (gold, predicted, expected): forms models write and known traps; each row once through the
# process pool, once in-process.
TABLE = [
    # equivalent forms
    ("\\frac{1}{2}", "0.5", C),
    ("\\dfrac{14}{3}", "4\\frac{2}{3}", C),
    ("2\\sqrt{3}", "\\sqrt{12}", C),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2", C),
    ("3+2i", "2i+3", C),
    ("1,000", "1000", C),
    ("18", "18.0", C),
    ("-\\frac{3}{4}", "-0.75", C),
    ("\\frac{5}{6}", "\\dfrac{5}{6}", C),
    ("\\pi", "3.14", W),
    ("\\frac{1}{3}", "0.333", W),
    ("0.33", "\\frac{1}{3}", W),
    ("10^{100}", "10^{100}+1", W),
    ("4", "4\\sqrt{2}", W),
    ("1 - \\frac{1}{e}", "1 + \\frac{1}{e}", W),
    ("18", "19", W),
    ("x^2+2x+1", "(x+1)^2", C),
    ("x^2+2x+1", "(x-1)^2", W),
    # intervals
    ("[1, 3)", "[1,3)", C),
    ("[1, 3)", "(1,3)", W),
    ("(-\\infty, 2]", "(-\\infty,2]", C),
    ("(-\\infty, 2]", "(-\\infty, 2)", W),
    ("[0, \\infty)", "[0,\\infty)", C),
    # tuples and sets
    ("(3, \\frac{\\pi}{2})", "\\left(3,\\frac{\\pi}{2}\\right)", C),
    ("(1, 2)", "(2, 1)", W),
    ("\\{1,2\\}", "\\{2,1\\}", C),
    ("1, 2", "2, 1", C),
    ("19, 46, 82", "21, 36, 82", W),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", C),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", W),
    # units
    ("5 \\text{ cm}", "5", C),
    ("10", "10\\text{ inches}", C),
    ("18", "\\$18", C),
    ("18", "18 \\text{ dollars}", C),
    ("5", "6 \\text{ cm}", W),
    # \text{}
    ("\\text{Evelyn}", "Evelyn", C),
    ("\\text{Evelyn}", "\\text{Bob}", W),
    ("\\text{even}", "\\text{odd}", W),
    ("13", "\\text{13}", C),
    # percent
    ("50\\%", "50", C),
    ("50\\%", "0.5", C),
    ("50\\%", "25\\%", W),
    ("12.5\\%", "12.5", C),
    # degrees
    ("30^\\circ", "30", C),
    ("30", "30^{\\circ}", C),
    ("45^\\circ", "60^\\circ", W),
    # multiple choice letters
    ("\\text{(B)}", "B", C),
    ("B", "\\text{B}", C),
    ("(C)", "C", C),
    ("B", "C", W),
    ("\\text{(A)}", "(B)", W),
    # equations
    ("x=3", "3", C),
    ("3", "x = 3", C),
    ("x = 3", "x = 4", W),
    # plus-minus
    ("\\pm 2", "-2, 2", C),
    ("\\pm 2", "\\pm 2", C),
    ("\\pm 2021", "2021", W),
    ("2021", "\\pm 2021", W),
    ("x = \\pm 2021", "x=2021", W),
    ("\\pm\\sqrt{2}", "\\sqrt{2}", W),
    # known false positives of math-verify 0.9.0 (issue #14): guarded
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", W),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", W),
    ("\\frac{2^{2005}+1}{3 \\cdot 2^{2006}}", "\\frac{1}{3 \\cdot 2^{2006}}", W),
    ("1, 2, \\ldots, n", "1, 3, 5, \\ldots, 2n-1", W),
    ("0.000001", "0.0000012", W),
    # ... and the guard keeps true equalities
    ("\\frac{1}{2004!}", "\\frac{1}{2004!}", C),
    ("\\frac{1}{2^{99}}", "2^{-99}", C),
    ("1, 2, \\ldots, n", "1,2,\\ldots,n", C),
    ("0.000001", "10^{-6}", C),
    # no verdict on the model when the gold cannot be read
    ("\\text{}", "5", G),
    # unreadable predictions are wrong
    ("5", "\\frac{", W),
    ("5", "", W),
    ("5", None, W),
]


def test_regression_table_through_the_pool():
    outcomes = check_answers([(g, p) for g, p, _ in TABLE])
    wrong = [(g, p, e, o) for (g, p, e), o in zip(TABLE, outcomes, strict=True) if o is not e]
    assert not wrong, wrong


@pytest.mark.parametrize("gold,pred,expected", TABLE)
def test_regression_table_in_process(gold, pred, expected):
    assert check_answer(gold, pred) is expected


def test_math_verify_still_has_the_false_positives_we_guard():
    # If math-verify fixes these upstream the guard becomes dead code: this test says so.
    from math_verify import verify

    gold, pred = answer.parse_answer("\\frac{1}{2004!}"), answer.parse_answer("\\frac{1}{2006!}")
    assert verify(gold, pred) is True


def _frame(golds, preds, source="problem"):
    return pl.DataFrame(
        {"gold": golds, "predicted": preds, "gold_source": [source] * len(golds)},
        schema={"gold": pl.String, "predicted": pl.String, "gold_source": pl.String},
    )


def test_filter_reasons_and_correct_from_a_worker_thread():
    # Prefect runs submitted tasks in threads: math-verify's signal.alarm cannot work there.
    df = _frame(["\\frac{1}{2}", "3", "\\text{}", None], ["0.5", "4", "4", "4"])
    results = {}
    t = threading.Thread(target=lambda: results.update(v=answer_filter(df)))
    t.start()
    t.join(timeout=60)
    v = results["v"]
    assert v["ok"].to_list() == [True, False, False, False]
    assert v["reason"].to_list() == [None, "wrong_answer", "gold_unparseable", "no_gold"]
    assert v["correct"].to_list() == [True, False, None, None]


def test_check_answer_from_a_worker_thread():
    results = {}

    def work():
        results["r"] = (check_answer("\\frac{1}{2}", "0.5"), check_answer("3", "4"))

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=30)
    assert results["r"] == (Outcome.CORRECT, Outcome.WRONG)


def _hang_on_13(sleep):
    # Plain numbers are compared without math-verify, so the traps use roots.
    real = answer.verify

    def verify(gold, pred, **kw):
        if any(str(x) == "sqrt(13)" for x in gold):
            sleep()
        return real(gold, pred, **kw)

    return verify


def test_a_check_that_never_returns_costs_one_timeout():
    df = _frame(
        ["\\sqrt{12}", "\\sqrt{13}", "\\sqrt{14}", "\\sqrt{15}"],
        ["2\\sqrt{3}", "\\sqrt{13}+0", "\\sqrt{7}\\sqrt{2}", "\\sqrt{16}"],
    )
    with patch.object(answer, "verify", _hang_on_13(lambda: time.sleep(3600))):
        t0 = time.perf_counter()
        v = answer_filter(df, {"timeout_s": 1.0, "workers": 2})
        elapsed = time.perf_counter() - t0
    assert v["reason"].to_list() == [None, "check_timeout", None, "wrong_answer"]
    assert v["correct"].to_list() == [True, None, True, False]
    assert elapsed < 6, f"one 1 s timeout took {elapsed:.1f} s"


def test_a_hang_that_ignores_signals_is_killed_and_only_it_is_lost():
    # A check stuck in C code never sees the alarm: pebble kills the worker, and the batch's
    # other checks are redone one by one.
    def stuck():
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(3600)

    df = _frame(["\\sqrt{12}", "\\sqrt{13}", "\\sqrt{14}"], ["2\\sqrt{3}", "\\sqrt{13}+0", "4"])
    with patch.object(answer, "verify", _hang_on_13(stuck)):
        v = answer_filter(df, {"timeout_s": 0.5, "workers": 1, "batch": 8})
    assert v["reason"].to_list() == [None, "check_timeout", "wrong_answer"]


def test_a_memory_blow_up_costs_that_check_only():
    real = answer.verify

    def greedy(gold, pred, **kw):
        if any(str(x) == "sqrt(13)" for x in gold):
            bytearray(64 * 2**30)  # 64 GiB: over the worker's limit, so MemoryError
        return real(gold, pred, **kw)

    df = _frame(["\\sqrt{12}", "\\sqrt{13}"], ["2\\sqrt{3}", "\\sqrt{13}+0"])
    with patch.object(answer, "verify", greedy):
        v = answer_filter(df, {"memory_mb": 256, "workers": 1})
    assert v["reason"].to_list() == [None, "check_error"]


def test_each_gold_is_parsed_once_and_pairs_are_checked_once(tmp_path):
    log = tmp_path / "parses.log"
    real = answer.parse_answer

    def logged(text, **kw):
        with log.open("a") as fh:
            fh.write(json.dumps(text) + "\n")
        return real(text, **kw)

    golds = ["\\sqrt{7}"] * 6 + ["\\sqrt{8}"] * 4
    preds = ["\\sqrt{7}+0"] * 3 + ["\\sqrt{6}"] * 2 + ["\\sqrt{7}+0"]
    preds += ["2\\sqrt{2}", "\\sqrt{9}", "\\sqrt{9}", "\\sqrt{2}\\cdot 2"]
    with patch.object(answer, "parse_answer", logged):
        outcomes = check_answers(zip(golds, preds, strict=True), PoolOptions(workers=1))
    parsed = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(parsed) == sorted(set(golds) | set(preds))  # each text parsed once
    assert [o.value for o in outcomes].count("correct") == 6


def test_plain_numbers_skip_the_parser_entirely(tmp_path):
    with patch.object(answer, "parse_answer", side_effect=AssertionError("parsed")):
        outcomes = check_answers([("42", "42.0"), ("-\\frac{3}{4}", "-3/4"), ("7", "8")])
    assert [o.value for o in outcomes] == ["correct", "correct", "wrong"]


def test_answer_filter_in_a_prefect_task_submitted_to_the_default_runner(prefect_api):
    from prefect import flow, task

    @task
    def check(df):
        return answer_filter(df, {"timeout_s": 2.0})["reason"].to_list()

    @flow
    def checks():
        df = _frame(["\\sqrt{12}", "\\frac{1}{2004!}"], ["2\\sqrt{3}", "\\frac{1}{2006!}"])
        return check.submit(df).result()  # ThreadPoolTaskRunner: a worker thread

    assert checks() == [None, "wrong_answer"]
