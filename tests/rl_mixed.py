"""A mixed warehouse for the RL export and reward tests (and bench/bench_rewards.py).

Real flows with the `sim` engine and the `sos` search: self_output and distill on arithmetic,
self_output on code problems (programs run in the sandbox), sos on Countdown; every run
filtered by `format`, `answer`, `steps` and `language`, so each stored trace carries the four
verdicts the rewards must reproduce. Plus an eval run over some of the arithmetic problems and
a decontamination hit, whose problems an RL export must never hold.
"""

from __future__ import annotations

import json
from pathlib import Path

from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.problems.sources import load_problems

FILTERS = ["format", "answer", "steps", "language"]
CODE_RATES = {"wrong": 0.3, "crashing": 0.1, "looping": 0.0, "hostile": 0.0}


ARITHMETIC, CODE, COUNTDOWN = 12, 4, 8  # problems of each kind at scale 1


def recipes(scale: int = 1, benchmark: Path | None = None) -> list[dict]:
    """The data recipes of a mixed run; `scale` multiplies the problems."""
    arithmetic = {"source": "builtin:arithmetic", "limit": ARITHMETIC * scale, "difficulty": [1, 4]}
    decontam = [{"decontam": {"benchmarks": [str(benchmark)]}}] if benchmark else []
    sim = {"kind": "sim", "error_rate": 0.3, "format_error_rate": 0.1}
    return [
        {
            "name": "rl-self",
            "problems": arithmetic,
            "engine": sim,
            "generate": {"method": "self_output", "samples": 4, "temperature": 0.8},
            "filters": FILTERS + decontam,
        },
        {
            "name": "rl-distill",
            "problems": arithmetic,
            "engine": sim,
            "generate": {"method": "distill", "samples": 2},
            "filters": FILTERS,
        },
        {
            "name": "rl-code",
            # builtin:code makes 132 distinct problems at most
            "problems": {"source": "builtin:code", "limit": min(CODE * scale, 120)},
            "engine": {"kind": "sim", "code": CODE_RATES},
            "generate": {"method": "self_output", "samples": 3, "temperature": 0.8},
            "filters": ["format", {"answer": {"code": {"timeout_s": 2.0}}}, "steps", "language"],
        },
        {
            "name": "rl-countdown",
            "problems": {"source": "builtin:countdown", "limit": COUNTDOWN * scale},
            "generate": {"method": "sos", "samples": 2, "max_nodes": 40},
            "filters": FILTERS,
        },
    ]


EVAL_LIMIT = 3  # problems of a benchmark file (their own source) an eval run samples


def build_mixed(warehouse: Path, folder: Path, scale: int = 1) -> dict:
    """Run the recipes into `warehouse`; returns {runs, eval_only: problem ids never exported}."""
    folder.mkdir(parents=True, exist_ok=True)
    arithmetic = load_problems("builtin:arithmetic", limit=ARITHMETIC * scale, difficulty=(1, 4))
    questions = arithmetic["question"].to_list()
    # a benchmark file holding one of the data run's problems: a decontamination hit
    benchmark = folder / "bench.jsonl"
    benchmark.write_text(json.dumps({"question": questions[-1]}) + "\n", encoding="utf-8")
    runs = [run_recipe(parse_recipe(r), str(warehouse)) for r in recipes(scale, benchmark)]
    evaluated = folder / "eval.jsonl"
    evaluated.write_text(
        "".join(
            json.dumps({"question": q, "answer": g}) + "\n"
            for q, g in zip(questions[:EVAL_LIMIT], arithmetic["gold"], strict=False)
        ),
        encoding="utf-8",
    )
    run_eval(
        eval_recipe(
            {"name": "rl-eval", "problems": {"source": str(evaluated)}, "engine": {"kind": "sim"}}
        ),
        warehouse,
    )
    return {"runs": runs, "arithmetic": arithmetic}


def stored_completion(thought: str | None, response: str | None, think_closed: bool) -> str:
    """The completion text a stored trace was parsed from (`prompts.parse_completion`'s
    inverse): `<think>` thought `</think>` response; an unclosed thought; no thought at all."""
    thought, response = thought or "", response or ""
    if not think_closed:
        return f"<think>\n{thought}" if thought else response
    return f"<think>\n{thought}\n</think>\n\n{response}"


TRACES = """
SELECT t.trace_id, t.problem_id, t.method, t.thought, t.response, t.correct,
       coalesce(json_extract(t.meta, '$.think_closed')::BOOLEAN, true) AS think_closed,
       json_extract_string(t.meta, '$.finish_reason') AS finish_reason,
       json_extract(t.meta, '$.verdicts')::VARCHAR AS verdicts
FROM traces t WHERE t.status <> 'eval' ORDER BY t.trace_id
"""


def verdict_score(name: str, verdict: str) -> float | None:
    """What a reward must give for a filter's stored verdict (`filters.rewards` docstring)."""
    from reasonfactory.filters.rewards import UNDECIDED

    if verdict == "ok":
        return 1.0
    if (name == "answer" and verdict in UNDECIDED) or (name == "steps" and verdict == "no_claims"):
        return None
    return 0.0


def compare(traces, rows, rewards) -> dict:
    """Each stored trace's rewards (from its completion text and its problem's export row)
    against the verdicts its filters stored; returns counts and the first disagreements."""
    import polars as pl

    frame = traces.join(rows.select("problem_id", "gold", "checker"), on="problem_id", how="inner")
    texts = [
        stored_completion(t, r, c)
        for t, r, c in zip(frame["thought"], frame["response"], frame["think_closed"], strict=True)
    ]
    kwargs = {"gold": frame["gold"].to_list(), "checker": frame["checker"].to_list()}
    verdicts = [json.loads(v) for v in frame["verdicts"]]
    scores = {
        "answer": rewards.answer_reward(texts, **kwargs),
        "format": rewards.format_reward(texts, **kwargs),
        "steps": rewards.steps_reward(texts, **kwargs),
        "language": rewards.language_reward(texts, **kwargs),
    }
    bad, checked, timeouts = [], 0, []
    for i, v in enumerate(verdicts):
        generated = v.get("generate")  # cut off or failed: the trainer sees no such thing
        # A check that timed out when the run stored it (5 s on a loaded machine) is no rule's
        # verdict: the reward may decide it now. Counted apart, never compared.
        timed_out = v["answer"] == "check_timeout"
        if timed_out:
            timeouts.append((frame["trace_id"][i], scores["answer"][i]))
        for name, values in scores.items():
            got = values[i]
            if (name == "format" and generated) or (name == "answer" and timed_out):
                continue
            checked += 1
            if name == "language":  # a share: the filter keeps it from 1 - max_mixed on
                same = (got >= round(1 - rewards.language.max_mixed, 4)) == (v[name] == "ok")
            else:
                same = got == verdict_score(name, v[name])
            if not same:
                bad.append((frame["trace_id"][i], name, v[name], got))
        stored = frame["correct"][i]
        answer = scores["answer"][i]
        if not timed_out and (None if answer is None else answer == 1.0) != stored:
            bad.append((frame["trace_id"][i], "correct", stored, answer))
    return {
        "traces": frame.height,
        "verdicts": checked,
        "disagree": bad,
        "scores": scores,
        "timeouts": timeouts,
        "methods": pl.Series(frame["method"]).value_counts().rows(),
    }
