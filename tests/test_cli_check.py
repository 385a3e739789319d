"""`reasonfactory check steps|answers`: JSONL in, one verdict per line out, as a user runs it
(a subprocess, a real file or standard input), with the verifiers the tree and filters run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import write_jsonl
from hostile_lines import hostile_lines
from reasonfactory.generators.verify.answer import check_answer
from reasonfactory.generators.verify.steps import check_equations

FIXTURE = Path(__file__).parent / "fixtures" / "real_step_lines.jsonl"


def _check(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def _out(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_check_steps_gives_the_tree_verdict_for_every_line(tmp_path):
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()][:120]
    path = write_jsonl(tmp_path / "steps.jsonl", [{"text": r["line"]} for r in rows])
    proc = _check("steps", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = _out(proc)
    assert [v["line"] for v in out] == list(range(1, len(rows) + 1))
    for row, verdict in zip(rows, out, strict=True):
        check = check_equations(row["line"])
        assert verdict["ok"] is check.ok and verdict["detail"] == check.detail
    assert "checked 120 line(s)" in proc.stderr


def test_check_steps_names_each_claim_and_bad_lines_do_not_stop_it(tmp_path):
    lines = [
        json.dumps({"text": "She makes 9 * 2 = $17 every day."}),
        "{not json",
        json.dumps({"txt": "x"}),
        json.dumps({"text": 3}),
        json.dumps({"text": "First find the eggs left, then the money."}),
        json.dumps({"text": "80 GB / 2 GB/minute = 40 minutes"}),
    ]
    proc = _check("steps", "-", stdin="\n".join(lines) + "\n", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    out = _out(proc)
    assert len(out) == 6
    assert out[0]["ok"] is False and out[0]["expected"] == "18"
    assert out[0]["claims"] == [
        {
            "written": "9 * 2 = $17",
            "claim": "9 * 2 = 17",
            "value": "18",
            "stated": "17",
            "approx": False,
            "holds": False,
        }
    ]
    assert out[1]["error"].startswith("line 2: not valid JSON")
    assert out[2]["error"] == "line 3: field 'text' is missing"
    assert out[3]["error"] == "line 4: field 'text' is of type int, not a string"
    assert out[4]["ok"] is None and out[4]["claims"] == []
    assert out[5]["ok"] is True and out[5]["claims"][0]["written"].startswith("80 GB / 2 GB")
    assert "true 1, false 1, unverified 1; 3 error(s)" in proc.stderr


def test_check_answers_with_formats_checkers_and_the_approximate_option(tmp_path):
    records = [
        {"gold": "\\sqrt{2}", "pred": "1.414"},
        {
            "gold": "#### 1,000",
            "pred": "So the total is \\boxed{1\\,000}.",
            "answer_format": "gsm8k",
        },
        {"gold": "24", "pred": "4 * 6 = 24", "checker": "countdown:4,6"},
        {"gold": "\\emptyset", "pred": "\\varnothing"},
        {"gold": "18", "pred": "19"},
        {"gold": "1", "pred": "1", "answer_format": "latex"},
        "[1, 2]",
    ]
    path = write_jsonl(tmp_path / "answers.jsonl", records)
    proc = _check("answers", str(path), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    out = _out(proc)
    assert [v.get("verdict") for v in out] == [
        "wrong",
        "correct",
        "correct",
        "correct",
        "wrong",
        None,
        None,
    ]
    assert "approximate: true" in out[0]["why"]
    assert out[1]["gold"] == "1000" and out[1]["pred"] == "1\\,000"
    assert out[2]["why"] == "by the rule countdown:4,6"
    assert "answer_format" in out[5]["error"] and " line 7: expected a JSON" in out[6]["error"]
    # the same verdicts as the in-process check the tree uses
    assert check_answer("18", "19").value == out[4]["verdict"]
    approx = _check("answers", "--approximate", str(path), cwd=tmp_path)
    assert _out(approx)[0]["verdict"] == "correct"


def test_check_of_a_missing_file_is_one_error_line(tmp_path):
    proc = _check("steps", "nope.jsonl", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip() == "error: nope.jsonl: no such file"


def test_hostile_lines_are_one_error_each_and_the_other_lines_are_checked(tmp_path):
    good = {"steps": {"text": "1 + 1 = 2"}, "answers": {"gold": "2", "pred": "2"}}
    field = {"steps": "text", "answers": "pred"}
    for command in ("steps", "answers"):
        bad = hostile_lines(field[command], good[command])
        if command == "answers":
            unknown = {**good["answers"], "checker": "nope:1"}
            huge = {"gold": "9" * 5000, "pred": "1", "checker": "countdown:4,6"}
            bad.append((json.dumps(unknown).encode(), "field 'checker' is 'nope:1'"))
            bad.append((json.dumps(huge).encode(), "field 'gold' is '9999.*countdown target"))
        # each bad line is followed by a good one: bad line k is file line 2k - 1
        lines = [line for raw, _ in bad for line in (raw, json.dumps(good[command]).encode())]
        path = tmp_path / f"{command}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        proc = _check(command, path.name, cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        out = _out(proc)
        assert [v["line"] for v in out] == list(range(1, len(lines) + 1))
        for k, ((_, message), verdict) in enumerate(zip(bad, out[0::2], strict=True)):
            expected = rf"{command}\.jsonl line {2 * k + 1}: {message}"
            assert re.match(expected, verdict["error"]), verdict["error"]
        assert all("error" not in v for v in out[1::2])  # the good lines were still checked
        assert f"checked {len(bad)} line(s)" in proc.stderr
        assert f"; {len(bad)} error(s)" in proc.stderr
