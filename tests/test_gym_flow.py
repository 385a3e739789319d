"""reasoning-gym problems through whole runs: a run over ten families against an
OpenAI-compatible server replaying scripted answers (the sim cannot solve gym tasks), `stats`
per family, a curriculum whose level follows the pass rate, and the `import gym:NAME` command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import polars as pl
import pytest
import yaml
from reasonfactory.filters.pipeline import parse_filter_spec
from reasonfactory.flows.curriculum import run_curriculum
from reasonfactory.flows.evaluate import eval_recipe, run_eval
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.flows.refilter import run_refilter
from reasonfactory.generators.problems.gym import next_level
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.stats import run_stats
from reasonfactory.warehouse.store import Warehouse
from scripted_server import ScriptedServer

TEN = {
    "chain_sum": 1,
    "gcd": 1,
    "simple_equations": 1,
    "word_sorting": 1,
    "spell_backward": 1,
    "knights_knaves": 1,
    "shortest_path": 1,
    "maze": 1,
    "number_sequence": 1,
    "arc_1d": 1,
}
PROBLEMS = {"source": "gym:composite", "families": TEN, "size": 60, "seed": 5}


def _engine(base_url: str) -> dict:
    return {"kind": "openai", "model": "scripted", "base_url": base_url, "timeout": 30}


@pytest.mark.slow
def test_a_run_over_ten_families_is_judged_by_their_checkers(prefect_api, tmp_path, cli):
    problems = load_problems(**PROBLEMS)
    golds = dict(zip(problems["question"], problems["gold"], strict=True))
    by_source = {}
    for source, question in zip(problems["source"], problems["question"], strict=True):
        by_source.setdefault(source, []).append(question)
    wrong = {}  # each question's wrong answer: the next problem's of its family that differs
    for questions in by_source.values():
        for i, q in enumerate(questions):
            others = [golds[o] for o in questions[i + 1 :] + questions[:i]]
            wrong[q] = next((g for g in others if g != golds[q]), "I do not know")

    def answer(question: str, seed: int) -> str:
        if seed % 2 == 0:  # sample 0: right, boxed; sample 1: wrong, in gym's answer tags
            return f"The answer is \\boxed{{{golds[question]}}}."
        return f"<answer>{wrong[question]}</answer>"

    wh_path = tmp_path / "wh.duckdb"
    with ScriptedServer(answer) as srv:
        recipe = parse_recipe(
            {
                "name": "gym-ten",
                "problems": PROBLEMS,
                "engine": _engine(srv.base_url),
                "generate": {"method": "self_output", "samples": 2, "temperature": 0.8},
                "filters": ["answer"],
            }
        )
        summary = run_recipe(recipe, str(wh_path))
        assert len(srv.log) == 2 * problems.height
    assert summary["generated"] == 2 * problems.height and summary["kept"] == problems.height
    with Warehouse(wh_path, read_only=True) as wh:
        traces = wh.sql(
            "SELECT t.problem_id, t.predicted, t.correct, t.response, t.meta, p.source, "
            "p.meta->>'checker' AS checker FROM traces t JOIN problems p USING (problem_id)"
        )
        stats = run_stats(wh, recipe.run_id)[0]
    assert traces["checker"].str.starts_with("gym:").all()
    # seeds s and s+1 of a problem: one even (right, boxed), one odd (wrong, in answer tags)
    per_problem = traces.group_by("problem_id").agg(right=pl.col("correct").sum())
    assert per_problem["right"].to_list() == [1] * problems.height
    wrong_ones = traces.filter(~traces["correct"])
    assert wrong_ones["response"].str.starts_with("<answer>").all()
    assert wrong_ones["predicted"].is_not_null().all()  # read from the tags, then scored
    details = [json.loads(m)["details"]["answer"]["score"] for m in traces["meta"]]
    assert all(0.0 <= s <= 1.0 for s in details)
    accuracy = {a["source"]: a for a in stats.accuracy}
    assert set(accuracy) == {f"gym:{name}" for name in TEN}
    assert {a["accuracy"] for a in accuracy.values()} == {0.5}
    shown = cli("stats", "-w", str(wh_path), check=True).stdout
    print(shown)  # pytest -s shows what `stats` prints for the ten families
    for name in TEN:
        assert re.search(rf"gym:{name}: 0\.500 of \d+", shown), shown


@pytest.mark.slow
def test_refilter_rejudges_a_gym_run_with_the_family_checkers(prefect_api, tmp_path):
    """A stored gym run re-judged without regenerating: the same verdicts from the problems'
    `meta.checker`, and a recipe threshold that counts every score as correct applies."""
    problems_spec = {
        "source": "gym:composite",
        "families": {"knights_knaves": 1, "word_sorting": 1, "chain_sum": 1},
        "size": 12,
        "seed": 3,
    }
    problems = load_problems(**problems_spec)
    golds = dict(zip(problems["question"], problems["gold"], strict=True))

    def answer(question: str, seed: int) -> str:  # even samples right, odd ones wrong
        return f"\\boxed{{{golds[question]}}}" if seed % 2 == 0 else "<answer>no idea</answer>"

    wh_path = tmp_path / "wh.duckdb"
    with ScriptedServer(answer) as srv:
        recipe = parse_recipe(
            {
                "name": "gym-refilter",
                "problems": problems_spec,
                "engine": _engine(srv.base_url),
                "generate": {"method": "self_output", "samples": 2},
                "filters": ["answer"],
            }
        )
        run_recipe(recipe, str(wh_path))
    query = "SELECT trace_id, status, reject_reason, correct FROM traces ORDER BY trace_id"
    with Warehouse(wh_path, read_only=True) as wh:
        before = wh.sql(query)
    assert before["correct"].sum() == problems.height  # the gym checkers decided, not math
    run_refilter(recipe.run_id, str(wh_path))
    with Warehouse(wh_path, read_only=True) as wh:
        assert wh.sql(query).equals(before)
    lenient = [parse_filter_spec({"answer": {"min_score": 0.0}})]
    run_refilter(recipe.run_id, str(wh_path), lenient)
    with Warehouse(wh_path, read_only=True) as wh:
        after = wh.sql("SELECT correct, meta FROM traces")
    assert after["correct"].all()
    assert all("score" in json.loads(m)["details"]["answer"] for m in after["meta"])


@pytest.mark.slow
def test_eval_scores_gym_answers_with_the_family_checkers(prefect_api, tmp_path):
    """`eval` over gym problems: pass@1 per family (`source=` subsets) is the share the
    scripted model got right, answers in the families' own formats."""
    spec = {
        "source": "gym:composite",
        "families": {"knights_knaves": 1, "word_sorting": 1, "arc_1d": 1},
        "size": 15,
        "seed": 9,
    }
    problems = load_problems(**spec)
    golds = dict(zip(problems["question"], problems["gold"], strict=True))
    right = set(problems["question"][::2])  # every other problem answered right

    def answer(question: str, seed: int) -> str:
        return f"<answer>{golds[question] if question in right else 'x'}</answer>"

    with ScriptedServer(answer) as srv:
        recipe = eval_recipe({"name": "gym", "problems": spec, "engine": _engine(srv.base_url)})
        rows = run_eval(recipe, tmp_path / "wh.duckdb", benchmark="gym-three")
    pass1 = {r["subset"]: r["value"] for r in rows.iter_rows(named=True) if r["metric"] == "pass@1"}
    assert pass1["all"] == pytest.approx(len(right) / problems.height)
    for source in set(problems["source"]):
        questions = problems.filter(pl.col("source") == source)["question"]
        expected = sum(q in right for q in questions) / len(questions)
        assert pass1[f"source={source}"] == pytest.approx(expected), source


def _chain_sum_answer(question: str, seed: int) -> str:
    """A scripted solver of chain_sum that is right on up to three terms, off by one above."""
    expression = question.split("problem:", 1)[1].split("=", 1)[0]
    tokens = re.findall(r"\d+|[+-]", expression)
    value, sign = 0, 1
    for token in tokens:
        if token in "+-":
            sign = 1 if token == "+" else -1
        else:
            value += sign * int(token)
    terms = sum(t.isdigit() for t in tokens)
    return f"\\boxed{{{value if terms <= 3 else value + 1}}}"


@pytest.mark.slow
def test_a_curriculum_moves_the_level_with_the_pass_rate(prefect_api, tmp_path, cli):
    wh_path = tmp_path / "wh.duckdb"
    with ScriptedServer(_chain_sum_answer) as srv:
        data = {
            "name": "gym-curriculum",
            "problems": {
                "source": "gym:chain_sum",
                "size": 12,
                "curriculum": {"rounds": 4, "band": [0.2, 0.8]},
            },
            "engine": _engine(srv.base_url),
            "generate": {"method": "self_output", "samples": 1},
            "filters": ["answer"],
        }
        (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
        shown = cli("run", "r.yaml", "-w", str(wh_path), check=True).stdout
        asked = len(srv.log)
        again = run_curriculum(parse_recipe(data), str(wh_path))
        assert len(srv.log) == asked  # a re-run finds every round stored
    print(shown)  # pytest -s shows the rounds as `run` prints them
    assert "curriculum gym-curriculum: 4 rounds" in shown
    with Warehouse(wh_path, read_only=True) as wh:
        rounds = [
            json.loads(m)["curriculum"]
            for (m,) in wh.con.execute(
                "SELECT meta FROM runs ORDER BY meta->'curriculum'->>'round'"
            ).fetchall()
        ]
        levels = wh.sql(
            "SELECT DISTINCT t.run_id, (p.meta->>'level')::INT AS level FROM traces t "
            "JOIN problems p USING (problem_id)"
        )
    assert [r["level"] for r in rounds][:3] == [0, 1, 2]  # right on 2-3 terms: up twice
    assert 0.2 <= rounds[2]["pass_rate"] <= 0.8  # 2-4 terms: some wrong, inside the band
    for r in rounds:
        assert r["next_level"] == next_level(r["level"], r["pass_rate"], (0.2, 0.8), 10)
        assert f"level {r['level']}, pass rate {r['pass_rate']:.2f}" in shown
    assert [r["level"] for r in again] == [r["level"] for r in rounds]
    assert levels.height == 4  # one level per round's run, as recorded
    recorded = {r["run_id"]: r["level"] for r in rounds}
    assert all(recorded[run] == level for run, level in levels.iter_rows())


def _rf(tmp_path, *args: str, block_gym: bool = False) -> subprocess.CompletedProcess:
    block = "import sys; sys.modules['reasoning_gym'] = None; " if block_gym else ""
    code = f"{block}from reasonfactory.flows.cli import main; main()"
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_import_gym_out_writes_a_file_that_imports_back_with_its_checker(tmp_path):
    made = _rf(tmp_path, "import", "gym:maze", "--size", "5", "--seed", "2", "--out", "m.jsonl")
    assert made.returncode == 0, made.stderr
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(records) == 5
    assert {"question", "answer", "checker", "difficulty", "family"} <= set(records[0])
    back = load_problems(str(tmp_path / "m.jsonl"))
    metas = [json.loads(m) for m in back["meta"]]
    assert [m["checker"] for m in metas] == [r["checker"] for r in records]
    from reasonfactory.generators.verify.answer_pool import judge_answers

    golds = back["gold"].to_list()
    outcomes = judge_answers(golds, golds[1:] + golds[:1], [m["checker"] for m in metas])
    assert [o.value for o in judge_answers(golds, golds, [m["checker"] for m in metas])] == [
        "correct"
    ] * 5
    assert any(o.value == "wrong" for o in outcomes)
    # a broken checker in such a file is an error naming the line
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    lines[2] = json.dumps({**records[2], "checker": "gym:{broken"})
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    bad = _rf(tmp_path, "import", "bad.jsonl", "-w", "wh.duckdb")
    assert bad.returncode == 1 and "bad.jsonl line 3: field 'checker'" in bad.stderr


def test_without_reasoning_gym_a_gym_source_says_how_to_install_it(tmp_path):
    proc = _rf(tmp_path, "import", "gym:maze", "--out", "m.jsonl", block_gym=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[gym]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
