"""The `answer` filter: each trace's final answer against its gold, through the checker pool.

Reads `gold`, `predicted`, `gold_source` and `checker` (generators.base.WORKING_COLUMNS);
the checking itself (math-verify guarded, in killable worker processes) is
`reasonfactory.generators.verify.answer_pool`. A code problem's traces (`checker` = `code:`
+ tests) are judged by running the program in the reply (`response`) against the tests,
all of a frame's at once (`generators.verify.code_tests.verify_many`); their reason is the
verdict (`failed_tests`, `runtime_error`, `timeout`, `memory`, `no_code`, `syntax_error`) and
`meta.details.answer` holds it whole (tests passed of total, the first failing case, the
sandbox layers it ran under).

With `judge: {...}` an LLM decides what the rules cannot (`filters/judge.py`): its traces
get `by` (rule | judge, recorded as `meta.verdicts.answer_by`) and `meta.details.answer`
holds both sides (`rule`: the rules' outcome, `judge`: correct | incorrect | judge_unparsed |
judge_error). A judge's `judge_unparsed` or `judge_error` is the trace's reason: never a pass.
"""

from __future__ import annotations

import json
from typing import Literal

import polars as pl
from pydantic import Field
from reasonfactory.filters.judge import JudgeOptions, judge_answers
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.verify.answer import Outcome
from reasonfactory.generators.verify.answer_pool import PoolOptions, judge_answers_scored
from reasonfactory.generators.verify.checkers import CODE, is_code
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many


class CodeCheckOptions(StrictModel):
    """How code answers are run (`answer: {code: {...}}`)."""

    timeout_s: float = Field(4.0, gt=0, le=600, description="wall-clock limit per test")
    memory_mb: int = Field(1024, ge=64, description="memory of one program's run")
    early_stop: bool = Field(True, description="stop at the first test that errors or times out")
    extract: Literal["last_block", "first_block", "whole", "auto"] = Field(
        "last_block", description="which part of the reply is the program"
    )
    workers: int | None = Field(None, ge=1, description="sandboxes at once (default: cores)")
    processes: int = Field(0, ge=0, le=64, description="processes or threads a program may add")
    allow_weak: bool = Field(
        False, description="run without bubblewrap, seccomp or a process cap (see README)"
    )

    def options(self) -> CodeOptions:
        return CodeOptions(
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            early_stop=self.early_stop,
            extract=self.extract,
            workers=self.workers,
            allow_weak=self.allow_weak,
            processes=self.processes,
        )


class AnswerOptions(StrictModel):
    """`answer` filter options (all optional)."""

    timeout_s: float = Field(
        5.0, ge=0.01, le=3600, description="wall-clock limit of one check (0.01 s to 1 h)"
    )
    workers: int | None = Field(
        None, ge=1, description="checker processes (default: the machine's cores)"
    )
    memory_mb: int = Field(2048, ge=64, description="memory one check may add to its worker")
    batch: int = Field(64, ge=1, description="checks sent to a worker at a time")
    approximate: bool = Field(
        False,
        description="a decimal may match an exact gold with no finite decimal form "
        "(sqrt(2), pi, 1/3) when it is the gold rounded or cut to the places it writes",
    )
    min_score: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="a scored check (reasoning-gym's score_answer, 0 to 1) counts as correct "
        "from this score; the score is kept in meta.details.answer.score",
    )
    code: CodeCheckOptions = CodeCheckOptions()
    judge: JudgeOptions | None = Field(
        None, description="an LLM for what the rules cannot decide (filters/judge.py)"
    )

    def pool(self) -> PoolOptions:
        return PoolOptions(
            self.timeout_s,
            self.workers,
            self.memory_mb,
            self.batch,
            self.approximate,
            self.min_score,
        )


REASONS = {
    Outcome.WRONG: "wrong_answer",
    Outcome.GOLD_UNPARSEABLE: "gold_unparseable",
    Outcome.TIMEOUT: "check_timeout",
    Outcome.ERROR: "check_error",
}


def answer_filter(traces: pl.DataFrame, options: AnswerOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `correct` for each trace (reads `gold`, `predicted`,
    `gold_source`). Reasons: wrong_answer, no_answer (nothing to read), gold_unparseable,
    check_timeout, check_error, no_gold (the problem has none), no_consensus (no gold and no
    qualified majority); a code problem's verdict (see above). A scored check (reasoning-gym)
    adds `detail.score`."""
    opts = AnswerOptions.model_validate(options or {})
    golds, preds = traces["gold"].to_list(), traces["predicted"].to_list()
    # Problems whose answers are not checked by equality (Countdown) carry a `checker`.
    checkers = traces["checker"].to_list() if "checker" in traces.columns else None
    code_rows = [i for i, c in enumerate(checkers or []) if is_code(c)]
    if code_rows:  # judged below, all at once; the pool never sees them
        checkers = [None if is_code(c) else c for c in checkers]
        golds_ = [None if is_code(c) else g for g, c in zip(golds, traces["checker"], strict=True)]
    else:
        golds_ = golds
    checked = judge_answers_scored(golds_, preds, checkers, opts.pool())
    outcomes = [c.outcome for c in checked]
    ok, reason, correct = [], [], []
    rows = zip(golds, preds, traces["gold_source"], outcomes, strict=True)
    for gold, pred, source, outcome in rows:
        if gold is None:
            ok.append(False)
            reason.append("no_consensus" if source == "none" else "no_gold")
            correct.append(None)
            continue
        ok.append(outcome is Outcome.CORRECT)
        # A reply with no answer to read is not a wrong answer: say which it is.
        missing = outcome is Outcome.WRONG and not (pred or "").strip()
        reason.append("no_answer" if missing else REASONS.get(outcome))
        correct.append(
            outcome is Outcome.CORRECT if outcome in (Outcome.CORRECT, Outcome.WRONG) else None
        )
    # partial credit (reasoning-gym), kept in meta.details.answer
    details: list[dict | None] = [None if c.score is None else {"score": c.score} for c in checked]
    if code_rows:
        specs = traces["checker"].to_list()
        responses = traces["response"].to_list() if "response" in traces.columns else preds
        tests = {}
        for i in code_rows:
            spec = specs[i]
            if spec not in tests:
                tests[spec] = read_tests(spec[len(CODE) :])
        verdicts = verify_many(
            [(tests[specs[i]], responses[i]) for i in code_rows], opts.code.options()
        )
        for i, verdict in zip(code_rows, verdicts, strict=True):
            ok[i], correct[i] = verdict.ok, verdict.ok
            reason[i] = None if verdict.ok else verdict.verdict
            details[i] = _code_detail(verdict)
    frame = {"ok": ok, "reason": reason, "correct": correct}
    schema = {"ok": pl.Boolean, "reason": pl.String, "correct": pl.Boolean}
    if opts.judge is not None:
        return _with_judge(traces, frame, schema, details, checked, code_rows, checkers, opts)
    if code_rows:
        frame["detail"] = details
        schema["detail"] = CODE_DETAIL
    elif any(d is not None for d in details):
        frame["detail"] = [{"score": c.score} for c in checked]
        schema["detail"] = pl.Struct({"score": pl.Float64})
    return pl.DataFrame(frame, schema=schema)


def _with_judge(traces, frame, schema, details, checked, code_rows, checkers, opts):
    """The verdict columns with the judge's part (filters/judge.py): it decides the traces it
    was asked about; its unparsed or failed replies are reasons, never passes."""
    code = set(code_rows)
    outcomes = [
        None if i in code or (checkers and checkers[i]) else c.outcome
        for i, c in enumerate(checked)
    ]
    questions = (
        traces["question"].to_list() if "question" in traces.columns else [None] * len(checked)
    )
    rows = judge_answers(
        questions, traces["gold"].to_list(), traces["predicted"].to_list(), outcomes, opts.judge
    )
    by = [None if r is None else r.by for r in rows]
    for i, row in enumerate(rows):
        if row is None:
            continue
        details[i] = {**(details[i] or {}), "by": row.by, "rule": row.rule, "judge": row.judge}
        if row.by == "judge":
            right = row.judge == "correct"
            known = row.judge in ("correct", "incorrect")
            frame["ok"][i] = right
            frame["correct"][i] = right if known else None
            frame["reason"][i] = None if right else ("wrong_answer" if known else row.judge)
    fields = dict(CODE_DETAIL.to_schema()) if code_rows else {"score": pl.Float64}
    fields.update(by=pl.String, rule=pl.String, judge=pl.String)
    frame["detail"] = [d if d is None else {k: d.get(k) for k in fields} for d in details]
    frame["by"] = by
    schema.update(detail=pl.Struct(fields), by=pl.String)
    return pl.DataFrame(frame, schema=schema)


CODE_DETAIL = pl.Struct(
    {
        "verdict": pl.String,
        "passed": pl.Int64,
        "total": pl.Int64,
        "first_failure": pl.String,
        "detail": pl.String,
        "sandbox": pl.String,
        "score": pl.Float64,  # a scored check's, on the other problems of a mixed frame
    }
)


def _code_detail(verdict) -> dict:
    d = verdict.to_dict()
    failure = d["first_failure"]
    return {
        "verdict": d["verdict"],
        "passed": d["passed"],
        "total": d["total"],
        "first_failure": json.dumps(failure, ensure_ascii=False) if failure else None,
        "detail": d["detail"],
        "sandbox": d["sandbox"] or None,
    }
