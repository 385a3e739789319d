"""Engines: the `Engine` protocol, engine configs, and `make_engine` to build one from a recipe.

Heavy engines (vllm, openai) are imported only when a recipe asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field, model_serializer, model_validator
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines.base import Completion, Engine, EngineError, GenRequest


class PricedEngine(StrictModel):
    """Prices in dollars per million tokens, for `stats` and `report` (cost = tokens_in *
    price_in + tokens_out * price_out); they change no text, so no run's identity."""

    price_in: float | None = Field(None, ge=0, description="$ per million prompt tokens")
    price_out: float | None = Field(None, ge=0, description="$ per million completion tokens")

    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset({"price_in", "price_out"})
    # Settings filled in from outside the recipe (none here; vllm's weights stamp).
    STAMPS: ClassVar[tuple[str, ...]] = ()


class SimCodeRates(StrictModel):
    """How often the sim writes each kind of faulty program for a code problem (per sample;
    the rest are right)."""

    wrong: float = Field(0.1, ge=0, lt=1)
    crashing: float = Field(0.04, ge=0, lt=1)
    looping: float = Field(0.03, ge=0, lt=1)
    hostile: float = Field(0.03, ge=0, lt=1)

    @model_validator(mode="after")
    def _below_one(self):
        if self.wrong + self.crashing + self.looping + self.hostile >= 1:
            raise ValueError("code: the rates must add up to less than 1")
        return self


class SimEngineConfig(PricedEngine):
    """The built-in simulator (CPU, no weights); see `reasonfactory.generators.engines.sim`."""

    kind: Literal["sim"] = "sim"
    model: str = "sim"
    error_rate: float = Field(0.2, ge=0, lt=1)
    format_error_rate: float = Field(0.0, ge=0, lt=1)
    typo_rate: float = Field(0.0, ge=0, lt=1)
    wordings: int = Field(1, ge=1, le=5)
    language: Literal["en", "zh"] = "en"  # the language the sim writes its steps in
    # Seconds every `generate` call sleeps, standing in for a model's time per batch: a sleep
    # does no work, so it measures a runner's overhead, not scaling (bench/bench_ray.py
    # --engine sim-sleep). It changes no text, so no identity.
    delay_s: float = Field(0.0, ge=0, le=60)
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = PricedEngine.NOT_IN_FINGERPRINT | frozenset(
        {"delay_s"}
    )
    # Programs for code problems (`builtin:code`): how often each kind of faulty one is
    # written. Unset: error_rate split as 50% wrong, 20% crashing, 15% looping, 15% hostile.
    code: SimCodeRates | None = None

    @model_serializer(mode="wrap")
    def _unset_code_is_absent(self, handler):
        # Left out when unset, so sim runs made before `code` existed keep their identity.
        out = handler(self)
        if isinstance(out, dict) and out.get("code", 0) is None:
            out.pop("code")
        return out


def _make_sim(config: SimEngineConfig) -> Engine:
    from reasonfactory.generators.engines.sim import SimEngine

    return SimEngine(
        config.error_rate,
        config.format_error_rate,
        model=config.model,
        typo_rate=config.typo_rate,
        wordings=config.wordings,
        language=config.language,
        delay_s=config.delay_s,
        code_rates=config.code.model_dump() if config.code else None,
    )


def with_weights_stamp(data):
    """A config's input with `weights` filled in from its `model` folder (a pydantic
    "before" validator's body: a vllm engine's model and a PRM stamp theirs the same way)."""
    if isinstance(data, dict) and data.get("model") and not data.get("weights"):
        return {**data, "weights": weights_stamp(data["model"])}
    return data


def weights_stamp(model: str) -> str:
    """Names, sizes and modification times of a model folder's weight files, hashed ("" for
    a hub name or a folder without weights). Reading the weights would take minutes for a
    real model; a retrained or replaced file changes its size or time.

    >>> weights_stamp("Qwen/Qwen2.5-Math-7B-Instruct")
    ''
    """
    from pathlib import Path

    from reasonfactory.generators.pulled_models import pulled_stamp, resolve_model
    from reasonfactory.warehouse.ids import digest

    folder = Path(resolve_model(model))
    if not folder.is_dir():
        return ""
    pulled = pulled_stamp(folder)
    if pulled is not None:  # a pulled folder is its files' content: pulling again resumes
        return pulled
    files = sorted(f for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".pt"))
    return (
        digest(*[(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]) if files else ""
    )


class VllmEngineConfig(PricedEngine):
    """Offline vLLM (`generators.engines.vllm`): a local folder or a hub name the machine has."""

    kind: Literal["vllm"] = "vllm"
    model: str = Field(description="model folder or name, e.g. Qwen/Qwen2.5-Math-7B-Instruct")
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=16)
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    enable_prefix_caching: bool = True
    # None: eager on a CPU (compiling took minutes there), compiled (CUDA graphs) on a GPU.
    enforce_eager: bool | None = None
    max_num_seqs: int | None = Field(None, ge=1)
    chat_template: str | None = Field(None, description="a Jinja file replacing the model's")
    trust_remote_code: bool = False
    engine_args: dict = Field(default_factory=dict, description="more vllm.LLM arguments")
    weights: str = Field("", description="stamp of a model folder's weights (filled in)")
    # Filled in from outside the recipe: a deployment stores the recipe without it, so each
    # of its runs stamps the folder as it is then (flows/recipe.py `to_data`).
    STAMPS: ClassVar[tuple[str, ...]] = ("weights",)

    @model_validator(mode="before")
    @classmethod
    def _stamp_weights(cls, data):
        # A folder trained again at the same path is another model: its weights' stamp is in
        # every run's and stored sample's identity, so it never gets the old model's samples
        # or evals (the loop redoes stages this way).
        return with_weights_stamp(data)

    # Settings that change speed or memory, not the text (left out of the run's fingerprint).
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = PricedEngine.NOT_IN_FINGERPRINT | frozenset(
        {
            "tensor_parallel_size",
            "gpu_memory_utilization",
            "enable_prefix_caching",
            "enforce_eager",
            "max_num_seqs",
        }
    )


def _make_vllm(config: VllmEngineConfig) -> Engine:
    from reasonfactory.generators.engines.vllm import VllmEngine

    return VllmEngine.from_config(config)


class OpenAIEngineConfig(PricedEngine):
    """Any OpenAI-compatible server (`reasonfactory.generators.engines.openai`)."""

    kind: Literal["openai"] = "openai"
    model: str = Field(description="the model name the server knows")
    base_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:8000/v1 (vllm serve); none: api.openai.com"
    )
    endpoint: Literal["chat", "completions"] = "chat"
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable with the key")
    concurrency: int = Field(64, ge=1, le=4096)
    timeout: float = Field(600.0, ge=0.1, description="seconds per attempt")
    max_retries: int = Field(6, ge=0, le=100)
    extra_body: dict = Field(default_factory=dict, description="server-specific request fields")

    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = PricedEngine.NOT_IN_FINGERPRINT | frozenset(
        {"base_url", "api_key_env", "concurrency", "timeout", "max_retries"}
    )


def _make_openai(config: OpenAIEngineConfig) -> Engine:
    from reasonfactory.generators.engines.openai import OpenAIEngine

    return OpenAIEngine(
        config.model,
        base_url=config.base_url,
        endpoint=config.endpoint,
        api_key_env=config.api_key_env,
        concurrency=config.concurrency,
        timeout=config.timeout,
        max_retries=config.max_retries,
        extra_body=config.extra_body,
    )


class PredictionsEngineConfig(StrictModel):
    """A file of a model's outputs (`generators.engines.predictions`): no model runs."""

    kind: Literal["predictions"] = "predictions"
    model: str = Field(min_length=1, description="the name of the model that wrote the file")
    path: str = Field(min_length=1, description="JSONL: problem_id or question, response")
    sources: tuple[str, ...] = Field((), description="problem sources its problem_ids are of")
    digest: str = Field("", description="hash of the file (filled in when empty)")

    # The file's content is its identity (`digest`), not where it lies.
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset({"path"})
    STAMPS: ClassVar[tuple[str, ...]] = ("digest",)

    @model_validator(mode="before")
    @classmethod
    def _hash_file(cls, data):
        if isinstance(data, dict) and data.get("path") and not data.get("digest"):
            from reasonfactory.generators.engines.predictions import file_digest

            return {**data, "digest": file_digest(data["path"])}
        return data


def _make_predictions(config: PredictionsEngineConfig) -> Engine:
    from reasonfactory.generators.engines.predictions import PredictionsEngine

    return PredictionsEngine(config.path, config.model, config.sources, config.digest)


# kind -> (config model, factory). A factory imports its engine module lazily, so vllm or an
# HTTP client is only imported when a recipe asks for that engine.
ENGINES: dict[str, tuple[type[StrictModel], Callable[[StrictModel], Engine]]] = {
    "sim": (SimEngineConfig, _make_sim),
    "vllm": (VllmEngineConfig, _make_vllm),
    "openai": (OpenAIEngineConfig, _make_openai),
    "predictions": (PredictionsEngineConfig, _make_predictions),
}


def make_engine(config: StrictModel) -> Engine:
    kind = config.kind
    if kind not in ENGINES:
        raise ValueError(f"unknown engine kind {kind!r}; valid: {', '.join(ENGINES)}")
    return ENGINES[kind][1](config)


__all__ = [
    "Completion",
    "Engine",
    "ENGINES",
    "EngineError",
    "GenRequest",
    "OpenAIEngineConfig",
    "PredictionsEngineConfig",
    "SimEngineConfig",
    "VllmEngineConfig",
    "make_engine",
]
