"""Engines: the `Engine` protocol, engine configs, and `make_engine` to build one from a recipe.

Heavy engines (vllm, openai) are imported only when a recipe asks for them.
"""

from __future__ import annotations

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


EngineConfig = SimEngineConfig


def make_engine(config: EngineConfig) -> Engine:
    if config.kind == "sim":
        from generators.engines.sim import SimEngine

        return SimEngine(config.error_rate, config.format_error_rate, model=config.model)
    raise ValueError(f"unknown engine kind {config.kind!r}")


__all__ = [
    "Completion",
    "Engine",
    "EngineConfig",
    "EngineError",
    "GenRequest",
    "SimEngineConfig",
    "make_engine",
]
