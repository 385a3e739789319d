"""Engines: the `Engine` protocol, engine configs, and `make_engine` to build one from a recipe.

Heavy engines (vllm, openai) are imported only when a recipe asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from generators.base import StrictModel
from generators.engines.base import Completion, Engine, EngineError, GenRequest


class SimEngineConfig(StrictModel):
    """The built-in simulator (CPU, no weights); see `generators.engines.sim`."""

    kind: Literal["sim"] = "sim"
    model: str = "sim"
    error_rate: float = Field(0.2, ge=0, lt=1)
    format_error_rate: float = Field(0.0, ge=0, lt=1)
    typo_rate: float = Field(0.0, ge=0, lt=1)
    wordings: int = Field(1, ge=1, le=5)


def _make_sim(config: SimEngineConfig) -> Engine:
    from generators.engines.sim import SimEngine

    return SimEngine(
        config.error_rate,
        config.format_error_rate,
        model=config.model,
        typo_rate=config.typo_rate,
        wordings=config.wordings,
    )


# kind -> (config model, factory). A factory imports its engine module lazily, so vllm or an
# HTTP client is only imported when a recipe asks for that engine.
ENGINES: dict[str, tuple[type[StrictModel], Callable[[StrictModel], Engine]]] = {
    "sim": (SimEngineConfig, _make_sim),
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
    "SimEngineConfig",
    "make_engine",
]
