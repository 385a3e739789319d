"""`eval --predictions`: a file of a model's outputs scored like the served model that wrote it.

The served eval is the sim engine on `builtin:arithmetic`, 4 samples at temperature 0.8 (so
pass@k and maj@k are not trivial), through the real generate flow and a real DuckDB file. Its
raw completions (the `completions` table: the text the engine returned) are written out as a
predictions file, half the lines naming the problem by `problem_id`, half by `question`, the
problems in another order. Scored as a file, every metric, interval and n must match, and the
stored traces must carry the same answers and verdicts. Bad files name file, line and field,
and store nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl
from hostile_lines import hostile_lines
from reasonfactory.flows.evaluate import eval_predictions, eval_recipe, run_eval
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse
from teacher_server import TeacherServer

SOURCE = "builtin:arithmetic"
LIMIT = 30


def _served(warehouse):
    recipe = eval_recipe(
        {"name": "served", "problems": {"source": SOURCE}, "engine": {"kind": "sim"}},
        samples=4,
        temperature=0.8,
    )
    return run_eval(recipe, warehouse, limit=LIMIT)


def _outputs(warehouse, run_id: str) -> list[dict]:
    """The served run's samples as the engine wrote them, in sample order per problem."""
    with Warehouse(warehouse, read_only=True) as wh:
        return wh.sql(
            "SELECT t.problem_id, p.question, (t.meta->>'sample_index')::INT AS i, c.text "
            "FROM traces t JOIN problems p USING (problem_id) "
            "JOIN completions c ON c.request_key = t.meta->>'request_key' "
            "WHERE t.run_id = ? ORDER BY t.problem_id, i",
            [run_id],
        ).to_dicts()


def _write(path, outputs: list[dict]) -> None:
    rng = random.Random(0)
    problems = sorted({o["problem_id"] for o in outputs})
    rng.shuffle(problems)  # problems in any order; a problem's lines keep its sample order
    by_id = {pid: n for n, pid in enumerate(problems)}
    lines = []
    for o in sorted(outputs, key=lambda o: (by_id[o["problem_id"]], o["i"])):
        named = (
            {"problem_id": o["problem_id"]}
            if by_id[o["problem_id"]] % 2
            else {"question": o["question"]}
        )
        lines.append(json.dumps({**named, "response": o["text"]}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _metrics(rows) -> dict:
    return {
        (r["subset"], r["metric"], r["k"]): (r["value"], r["ci_low"], r["ci_high"], r["n"])
        for r in rows.iter_rows(named=True)
    }


def test_a_file_of_outputs_scores_like_the_served_eval(prefect_api, warehouse_path, tmp_path):
    served = _served(warehouse_path)
    served_run = served["run_id"][0]
    outputs = _outputs(warehouse_path, served_run)
    assert len(outputs) == LIMIT * 4
    path = tmp_path / "preds.jsonl"
    _write(path, outputs)

    rows = eval_predictions(path, SOURCE, "sim-as-file", warehouse_path, limit=LIMIT)
    file_run = rows["run_id"][0]
    assert file_run != served_run and set(rows["model"]) == {"sim-as-file"}
    expected, got = _metrics(served), _metrics(rows)
    assert got.keys() == expected.keys() and ("all", "maj@4", 4) in got
    for key, values in expected.items():
        assert got[key] == pytest.approx(values), key
    whole = got[("all", "pass@1", 1)]
    assert 0.2 < whole[0] < 0.95 and whole[3] == LIMIT  # not a degenerate score

    with Warehouse(warehouse_path, read_only=True) as wh:
        pairs = wh.sql(
            "SELECT a.problem_id, a.meta->>'sample_index' AS i, a.predicted AS pa, "
            "b.predicted AS pb, a.correct AS ca, b.correct AS cb, b.status "
            "FROM traces a JOIN traces b ON a.problem_id = b.problem_id "
            "AND a.meta->>'sample_index' = b.meta->>'sample_index' "
            "WHERE a.run_id = ? AND b.run_id = ?",
            [served_run, file_run],
        )
        (recipe,) = wh.con.execute(
            "SELECT recipe_name FROM runs WHERE run_id = ?", [file_run]
        ).fetchone()
    assert pairs.height == LIMIT * 4
    assert (pairs["pa"] == pairs["pb"]).all() and (pairs["ca"] == pairs["cb"]).all()
    assert set(pairs["status"]) == {"eval"} and recipe == "eval:sim-as-file"

    again = eval_predictions(path, SOURCE, "sim-as-file", warehouse_path, limit=LIMIT)
    assert again["run_id"][0] == file_run and _metrics(again) == got  # resumed: same run
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.sql("SELECT count(*) AS n FROM traces")["n"][0] == 2 * LIMIT * 4

    # the same file with one answer changed is another eval, not a resumed one
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "response": "<think>\nno idea\n</think>\n\n\\boxed{-1}"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    changed = eval_predictions(path, SOURCE, "sim-as-file", warehouse_path, limit=LIMIT)
    assert changed["run_id"][0] != file_run


def test_a_servers_split_thinking_scores_alike(prefect_api, warehouse_path, tmp_path):
    """The openai engine against a local server that returns thinking apart
    (`reasoning_content`): written out with `reasoning`, the file scores the same. `[odd]`
    makes odd-seeded samples wrong, so samples of a problem disagree."""
    problems = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"question": f"What is {a} + {b}?{' [odd]' if a % 3 else ''}", "answer": str(a + b)}
            for a, b in [(3, 4), (9, 9), (12, 30), (7, 8), (21, 5), (6, 6)]
        ],
    )
    with TeacherServer(split=True) as srv:
        engine = {"kind": "openai", "model": "teacher", "base_url": srv.base_url}
        recipe = eval_recipe(
            {"name": "t", "problems": {"source": str(problems)}, "engine": engine},
            samples=3,
            temperature=0.7,
        )
        served = run_eval(recipe, warehouse_path)
    with Warehouse(warehouse_path, read_only=True) as wh:
        outputs = wh.sql(
            "SELECT t.problem_id, c.text AS response, c.reasoning FROM traces t "
            "JOIN completions c ON c.request_key = t.meta->>'request_key' WHERE t.run_id = ? "
            "ORDER BY t.problem_id, (t.meta->>'sample_index')::INT",
            [served["run_id"][0]],
        ).to_dicts()
    assert all(o["reasoning"] for o in outputs) and len(outputs) == 18
    path = write_jsonl(tmp_path / "preds.jsonl", outputs)
    rows = eval_predictions(path, str(problems), "teacher-file", warehouse_path)
    expected, got = _metrics(served), _metrics(rows)
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        assert got[key] == pytest.approx(values), key
    assert 0 < got[("all", "pass@1", 1)][0] < 1 and got[("all", "pass@3", 3)][0] == 1.0


def _problems():
    from reasonfactory.generators.problems.sources import load_problems

    return load_problems(SOURCE, limit=3)


def _bad_files(tmp_path):
    p = _problems()
    ids, qs = p["problem_id"].to_list(), p["question"].to_list()
    ok = [json.dumps({"problem_id": pid, "response": "\\boxed{1}"}) for pid in ids]
    return [
        ([ok[0], "{not json", *ok[1:]], r"bad\.jsonl:2: not valid JSON"),
        ([ok[0], ok[1], json.dumps({"problem_id": ids[2]})], r"bad\.jsonl:3: field 'response'"),
        ([json.dumps({"response": "x"}), *ok], r"bad\.jsonl:1: field 'problem_id' \(or"),
        ([*ok, '{"problem_id": "p_nope", "response": "2"}'], r"bad\.jsonl:4: field 'problem_id'"),
        ([*ok, json.dumps({"question": "What is 1 + 1?", "response": "2"})], r":4: field 'quest"),
        ([*ok, json.dumps({"question": qs[0], "response": 7})], r":4: field 'response' must be"),
        (ok[:2], r"no response for 1 of the 3 problems"),
        ([*ok, ok[1]], r"same number of responses.*line 2\) has 2, most have 1"),
        ([*ok, "[1, 2]"], r"bad\.jsonl:4: expected a JSON object"),
    ]


def test_bad_predictions_name_file_line_and_field_and_store_nothing(
    prefect_api, warehouse_path, tmp_path
):
    _served(warehouse_path)  # something stored already, which a bad file must not touch
    counted = "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM traces), " + (
        "(SELECT count(*) FROM evals), (SELECT count(*) FROM problems)"
    )
    with Warehouse(warehouse_path, read_only=True) as wh:
        before = wh.con.execute(counted).fetchone()
    path = tmp_path / "bad.jsonl"
    for lines, message in _bad_files(tmp_path):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(UserError, match=message):
            eval_predictions(path, SOURCE, "m", warehouse_path, limit=3)
    with Warehouse(warehouse_path, read_only=True) as wh:
        assert wh.con.execute(counted).fetchone() == before


def test_eval_predictions_cli(cli, tmp_path):
    """GSM8K's shipped sample, golds read with --answer-format gsm8k: half the responses right."""
    gsm8k = Path(__file__).resolve().parents[1] / "data" / "gsm8k_test.jsonl"
    records = [json.loads(x) for x in gsm8k.read_text(encoding="utf-8").splitlines() if x]
    lines = []
    for n, r in enumerate(records):
        gold = r["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        said = gold if n % 2 == 0 else f"{gold}1"
        reply = f"<think>\nThe total is {said}.\n</think>\n\nSo \\boxed{{{said}}}."
        lines.append(json.dumps({"question": r["question"], "response": reply}))
    (tmp_path / "preds.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["eval", "--predictions", "preds.jsonl", "--problems", str(gsm8k)]
    proc = cli(*args, "--answer-format", "gsm8k", "--model", "half", check=True)
    line = next(x for x in proc.stdout.splitlines() if " all " in x and "pass@1" in x)
    assert " 50.0% " in line and line.endswith(f"n={len(records)}"), proc.stdout
    (tmp_path / "preds.jsonl").write_text(lines[0] + "\n{oops\n", encoding="utf-8")
    proc = cli(*args, "--answer-format", "gsm8k", "--model", "half")
    assert proc.returncode == 1 and "preds.jsonl:2: not valid JSON" in proc.stderr, proc.stderr
    proc = cli(*args)
    assert proc.returncode == 1 and "--model NAME" in proc.stderr


def test_hostile_prediction_lines_are_one_error_each_and_store_nothing(tmp_path):
    """Each bad line of the file gets its own `error:` line naming file, line and field; the
    warehouse is never created. No Prefect: the file is checked before anything runs."""
    ok = json.dumps({"question": "What is 1 + 1?", "response": "\\boxed{2}"}).encode()
    bad = hostile_lines("response", {"question": "What is 1 + 1?", "response": ""})
    lines = [line for raw, _ in bad for line in (ok, raw)]  # bad line k is file line 2k + 2
    (tmp_path / "preds.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "eval",
         "--predictions", "preds.jsonl", "--problems", SOURCE, "--model", "m", "-w", "w.duckdb"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},  # never reached
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == len(bad) + 1 and all(e.startswith("error: ") for e in errors)
    for k, ((_, message), line) in enumerate(zip(bad, errors, strict=False)):
        assert re.match(rf"error: .*preds\.jsonl:{2 * k + 2}: {message}", line), line
    assert errors[-1].endswith(f"preds.jsonl: {len(bad)} bad line(s); nothing was stored")
    assert not (tmp_path / "w.duckdb").exists()
