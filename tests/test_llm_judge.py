"""The answer filter's LLM judge (filters/judge.py) against a real OpenAI-compatible server
with scripted replies (tests/scripted_server.py): right, wrong, garbage, refusal, 500s, slow.

The rules decide first; the judge sees only what they cannot decide (`when: undecided`), its
judgements are cached in the warehouse's completions (a second run asks nothing it was
answered before: counted at the server), and a reply that is not exactly CORRECT or
INCORRECT never passes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from reasonfactory.filters.judge import judge_store, read_verdict, undecided
from reasonfactory.filters.pipeline import apply_filters
from reasonfactory.generators.verify.answer import Outcome
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.schema import RUNS, TRACES
from reasonfactory.warehouse.store import Warehouse
from scripted_server import ScriptedServer

QUESTION = "Tom buys 3 pens at $6 each. How much does he pay?"


def _prediction(prompt: str) -> str:
    return prompt.split("Answer to grade:\n", 1)[1].split("\n\nThe answer is", 1)[0]


def _reply(prompt: str, seed: int) -> str:
    pred = _prediction(prompt)
    if "[garbage]" in pred:
        return "Correct, the answer matches."
    if "[refuse]" in pred:
        return "I'm sorry, but I can't help with grading this."
    return "CORRECT" if ("18" in pred or "eighteen" in pred) else "INCORRECT"


class _Faults:
    """500 on every attempt (`[500]`), on the first only (`[flaky]`), or a reply slower than
    the client's timeout (`[slow]`)."""

    def __init__(self):
        self.seen: dict[str, int] = {}

    def __call__(self, prompt: str):
        pred = _prediction(prompt)
        self.seen[pred] = self.seen.get(pred, 0) + 1
        if "[500]" in pred or ("[flaky]" in pred and self.seen[pred] == 1):
            return 500
        if "[slow]" in pred:
            return 1.0
        return None


@pytest.fixture(scope="module")
def server():
    with ScriptedServer(_reply, _Faults()) as srv:
        yield srv


def _judge(srv, when: str = "undecided") -> dict:
    engine = {
        "kind": "openai",
        "model": "judge",
        "base_url": srv.base_url,
        "api_key_env": "RF_NO_SUCH_KEY",
        "timeout": 0.3,
        "max_retries": 1,
    }
    return {"answer": {"workers": 1, "judge": {"engine": engine, "when": when}}}


# (prediction, what the rules make of it against gold 18, final verdict with the judge)
CASES = [
    ("18", "rule", "ok"),
    ("17", "rule", "wrong_answer"),
    ("\\frac{36}{2}", "rule", "ok"),
    ("18 dollars", "judge", "ok"),  # right
    ("eighteen dollars", "judge", "ok"),  # right, in words
    ("He pays 17 dollars in total.", "judge", "wrong_answer"),  # wrong
    ("18 [garbage]", "judge", "judge_unparsed"),  # garbage never passes
    ("18 dollars [refuse]", "judge", "judge_unparsed"),  # a refusal
    ("18 dollars [500]", "judge", "judge_error"),  # 500 on every attempt
    ("18 dollars [flaky]", "judge", "ok"),  # 500 once, then answered
    ("18 dollars [slow]", "judge", "judge_error"),  # past the timeout on every attempt
]


def _frame(preds: list[str], gold: str = "18") -> pl.DataFrame:
    n = len(preds)
    return pl.DataFrame(
        {
            "trace_id": [f"t{i:02d}" for i in range(n)],
            "problem_id": ["p1"] * n,
            "run_id": ["r_judge"] * n,
            "method": ["self_output"] * n,
            "predicted": preds,
            "response": [f"The answer is \\boxed{{{p}}}." for p in preds],
            "meta": ["{}"] * n,
            "gold": [gold] * n,
            "gold_source": ["problem"] * n,
            "question": [QUESTION] * n,
        }
    )


def _filtered(srv, wh: Warehouse, frame: pl.DataFrame, when: str = "undecided"):
    """Apply the judge's answer filter with the warehouse's completions as its cache; returns
    (traces, requests the server received)."""
    before = len(srv.log)

    def lookup(keys):
        return wh.fetch("completions", pl.DataFrame({"request_key": keys}))

    with judge_store(lookup, None) as store:
        out = apply_filters(frame, [_judge(srv, when)])
    fresh = store.fresh()
    if fresh is not None:
        wh.ingest_all({"completions": fresh})
    return out, [_prediction(q) for q, _ in srv.log[before:]]


def _verdicts(out: pl.DataFrame) -> list[dict]:
    return [json.loads(m) for m in out["meta"].to_list()]


def test_judge_decides_only_undecided_caches_and_never_passes_garbage(server, tmp_path):
    preds = [p for p, _, _ in CASES]
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        out, asked = _filtered(server, wh, _frame(preds))
        metas = _verdicts(out)
        for (pred, by, verdict), meta, ok in zip(CASES, metas, out["status"], strict=True):
            assert meta["verdicts"]["answer"] == verdict, pred
            assert meta["verdicts"]["answer_by"] == by, pred
            assert (ok == "kept") == (verdict == "ok"), pred
        # the rules' three were never sent; each undecided one was, faults with their retries
        judged = {p for p, by, _ in CASES if by == "judge"}
        assert set(asked) == judged
        assert asked.count("18 dollars [500]") == 2 and asked.count("18 dollars [slow]") == 2
        garbage = metas[preds.index("18 [garbage]")]["details"]["answer"]
        assert garbage == {"by": "judge", "rule": "undecided", "judge": "judge_unparsed"}
        assert out["correct"][preds.index("18 [garbage]")] is None
        assert out["correct"][preds.index("18 dollars [500]")] is None

        # failed requests are never stored: a re-run asks them again, and nothing else
        assert wh.count("completions") == len(judged) - 2
        settled = [p for p in preds if "[500]" not in p and "[slow]" not in p]
        again, asked = _filtered(server, wh, _frame(settled))
        assert asked == []  # every judgement served from the warehouse: zero calls
        assert again["reject_reason"].to_list() == [
            r for p, r in zip(preds, out["reject_reason"], strict=True) if p in settled
        ]


def test_a_judge_whose_every_request_fails_stops_the_caller(server):
    # the server is down for this batch: the engine raises, as it does when generating (a
    # run's shard or a refilter batch stops; nothing of it is stored), no verdict is made up
    from reasonfactory.filters.judge import JudgeOptions, ask_judge

    options = JudgeOptions.model_validate(_judge(server)["answer"]["judge"])
    with pytest.raises(UserError, match="all 2 requests .* failed"):
        ask_judge([(QUESTION, "18", "18 [500] a"), (QUESTION, "18", "18 [500] b")], options)


def test_always_records_both_and_stats_show_agreement(server, tmp_path):
    from reasonfactory.flows.cli import app
    from reasonfactory.warehouse.judge_stats import judge_line
    from reasonfactory.warehouse.report import build_report
    from reasonfactory.warehouse.stats import run_stats
    from typer.testing import CliRunner

    preds = ["18", "17", "\\frac{36}{2}", "18 dollars", "18 [garbage]"]
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        out, asked = _filtered(server, wh, _frame(preds), when="always")
        assert sorted(asked) == sorted(preds)  # always: every answer goes to the judge
        details = [m["details"]["answer"] for m in _verdicts(out)]
        assert [d["rule"] for d in details] == [
            "correct",
            "wrong",
            "correct",
            "undecided",
            "undecided",
        ]
        # the scripted judge calls \frac{36}{2} INCORRECT: it decides, the rule is kept
        assert [d["judge"] for d in details] == [
            "correct",
            "incorrect",
            "incorrect",
            "correct",
            "judge_unparsed",
        ]
        assert out["reject_reason"].to_list() == [
            None,
            "wrong_answer",
            "wrong_answer",
            None,
            "judge_unparsed",
        ]
        wh.ingest(
            "runs",
            RUNS.conform(
                pl.DataFrame(
                    [
                        {
                            "run_id": "r_judge",
                            "recipe_name": "j",
                            "recipe": "name: j",
                            "status": "done",
                        }
                    ]
                )
            ),
        )
        now = pl.lit(datetime.now(UTC))
        wh.ingest("traces", TRACES.conform(out.with_columns(created_at=now)))
        (s,) = run_stats(wh)
        (shown,) = build_report(wh, sample=1)["stats"]  # what the report page lists
    assert s.judge == {
        "by_rule": 0,
        "by_judge": 5,
        "unparsed": 1,
        "errors": 0,
        "both_decided": 3,
        "agree": 2,
        "agreement": 2 / 3,
    }
    assert shown["judge"] == s.judge
    line = "judge: rules decided 0, the judge 5 (1 unparsed, 0 errors); both decided 3: agree 2"
    printed = CliRunner().invoke(app, ["stats", "-w", str(tmp_path / "wh.duckdb")])
    printed = " ".join(printed.stdout.split())  # as rich wraps it, on one line
    assert line + " (66.7%)" in printed and judge_line(s.judge) in printed


def test_check_answers_judge_asks_nothing_twice(server, tmp_path):
    from reasonfactory.flows.cli import app
    from typer.testing import CliRunner

    recipe = tmp_path / "judge.yaml"
    recipe.write_text(json.dumps({"filters": [_judge(server)]}))
    lines = "\n".join(
        json.dumps({"gold": "18", "pred": p, "question": QUESTION})
        for p in ("18", "17", "eighteen dollars", "17 dollars [x]", "18 [garbage]")
    )
    args = ["check", "answers", "--judge", str(recipe), "-w", str(tmp_path / "wh.duckdb"), "-"]
    runs = []
    for _ in range(2):
        before = len(server.log)
        result = CliRunner().invoke(app, args, input=lines)
        assert result.exit_code == 0, result.output
        rows = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
        runs.append(([(r["verdict"], r["by"]) for r in rows], len(server.log) - before))
    expected = [
        ("correct", "rule"),
        ("wrong", "rule"),
        ("correct", "judge"),
        ("wrong", "judge"),
        ("judge_unparsed", "judge"),
    ]
    assert runs == [(expected, 3), (expected, 0)]


def test_check_answers_judge_needs_a_judge(tmp_path):
    from reasonfactory.flows.cli import app
    from typer.testing import CliRunner

    recipe = tmp_path / "plain.yaml"
    recipe.write_text("filters: [answer]\n")
    result = CliRunner().invoke(app, ["check", "answers", "--judge", str(recipe), "-"], input="")
    assert result.exit_code != 0
    assert "no judge in its filters" in str(result.exception) + result.output


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("CORRECT", "correct"),
        ("  INCORRECT\n", "incorrect"),
        ("<think>\nThe gold is 18 and 18 dollars is 18.\n</think>\n\nCORRECT", "correct"),
        ("Correct", None),
        ("CORRECT.", None),
        ("The answer is CORRECT", None),
        ("CORRECT or INCORRECT", None),
        ("**CORRECT**", None),
        ("INCORRECT, the units differ", None),
        ("I'm sorry, but I can't help with that.", None),
        ("<think>\nThe gold is 18, so CORRECT", None),  # thinking cut off
        ("", None),
    ],
)
def test_read_verdict_is_strict(reply, verdict):
    assert read_verdict(reply) == verdict


@pytest.mark.parametrize(
    ("gold", "pred", "outcome", "judged"),
    [
        # GSM8K-style golds against free-form answers: rules cannot compare words
        ("18", "18 dollars", Outcome.WRONG, True),
        ("5.5", "5 hours and 30 minutes", Outcome.WRONG, True),
        ("3", "three", Outcome.WRONG, True),
        ("Tuesday", "Monday", Outcome.WRONG, True),
        # rules that did compare two numbers or expressions decided
        ("18", "17", Outcome.WRONG, False),
        ("\\frac{1}{2}", "\\frac{2}{3}", Outcome.WRONG, False),
        ("x^2 + 1", "x^2 - 1", Outcome.WRONG, False),
        ("18", "18", Outcome.CORRECT, False),
        # no verdict from the rules
        ("\\text{the red one}", "red", Outcome.GOLD_UNPARSEABLE, True),
        ("2^{2^{100}}", "1", Outcome.TIMEOUT, True),
        ("18", "18", Outcome.ERROR, True),
    ],
)
def test_undecided(gold, pred, outcome, judged):
    assert undecided(outcome, gold, pred) is judged


def test_a_shard_hands_its_judgements_on_with_its_completions(server):
    """A run's shard (flows/shards.py): the judge's completions go to the run's sink with the
    samples (a local run stores them within seconds), or travel with the shard (Ray)."""
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.flows.shards import process_shard
    from reasonfactory.generators.base import RunContext
    from reasonfactory.generators.engines import make_engine
    from reasonfactory.generators.problems.sources import load_problems

    judge = _judge(server, "always")
    recipe = parse_recipe(
        {
            "name": "judged",
            "problems": {"source": "builtin:arithmetic", "limit": 2},
            "engine": {"kind": "sim", "error_rate": 0.0},
            "generate": {"samples": 2},
            "filters": [judge],
        }
    )
    shard = load_problems("builtin:arithmetic", limit=2)
    ctx = RunContext(recipe.run_id, recipe.fingerprint, "sim")
    sunk: list[dict] = []
    local = process_shard(shard, make_engine(recipe.engine), recipe, ctx, None, sunk.extend)
    judged = [r for r in sunk if r["engine"].startswith("judge_")]
    assert len(judged) == 2  # one per distinct (question, gold, answer): 2 problems
    assert len(sunk) == 2 + 2 * 2 and local.completions.height == 0
    assert {json.loads(m)["verdicts"]["answer_by"] for m in local.traces["meta"]} == {"judge"}
    ray = process_shard(shard, make_engine(recipe.engine), recipe, ctx, None, None)
    engines = ray.completions["engine"].to_list()
    assert sum(e.startswith("judge_") for e in engines) == 2 and len(engines) == 6
