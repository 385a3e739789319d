"""One prompt contract: an exported SFT row's user turn is the chat the model was asked, so a
model trained on the export is evaluated (`eval`, same generate settings) with the prompt it
was trained on; `--prompt raw` gives the bare question instead."""

from __future__ import annotations

import datasets
import pytest
from reasonfactory.flows.evaluate import eval_recipe
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.export import export_sft
from reasonfactory.warehouse.store import Warehouse

GENERATE = {
    "method": "self_output",
    "samples": 2,
    "system_prompt": "You are a careful solver.",
    "examples": [
        {
            "question": "Compute 2 + 3.",
            "reply": "<think>\nStep 1: 2 + 3 = 5.\n</think>\n\nThe answer is \\boxed{5}.",
        }
    ],
}
RECIPE = {
    "name": "prompt-contract",
    "problems": {"source": "builtin:arithmetic", "limit": 6},
    "engine": {"kind": "sim", "error_rate": 0.2},
    "generate": GENERATE,
    "filters": ["format", "answer"],
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory, prefect_api):
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    run_recipe(parse_recipe(RECIPE), str(path))
    return path


def _rows(stored, out, **kw):
    export_sft(stored, out, fmt="hf", **kw)
    return datasets.load_from_disk(str(out))


def test_export_user_turn_is_what_eval_asks(stored, tmp_path):
    with Warehouse(stored, read_only=True) as wh:
        questions = dict(wh.sql("SELECT problem_id, question FROM problems").rows())
    asks = eval_recipe(RECIPE).generate.messages  # what `eval` sends for a problem
    rows = _rows(stored, tmp_path / "sft")
    assert rows.num_rows > 0
    for row in rows:
        *prompt, answer = row["messages"]
        assert tuple(prompt) == asks(questions[row["problem_id"]])
        assert answer["role"] == "assistant" and answer["content"].startswith("<think>\n")
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"] * 1 + [
        "user",
        "assistant",
    ]


def test_raw_prompt_is_the_bare_question(stored, tmp_path):
    with Warehouse(stored, read_only=True) as wh:
        questions = dict(wh.sql("SELECT problem_id, question FROM problems").rows())
    generated = _rows(stored, tmp_path / "gen")
    raw = _rows(stored, tmp_path / "raw", prompt="raw")
    assert raw.num_rows == generated.num_rows
    for a, b in zip(raw, generated, strict=True):
        assert a["messages"][0] == {"role": "user", "content": questions[a["problem_id"]]}
        assert len(a["messages"]) == 2 and a["messages"][-1] == b["messages"][-1]
