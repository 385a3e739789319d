"""The `tree` method's settings (`generate: {method: tree, ...}` in a recipe)."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from reasonfactory.generators.base import StrictModel

Verifier = Literal["equations", "code", "rollout"]
VERIFIERS: tuple[str, ...] = ("equations", "code", "rollout")
log = logging.getLogger("reasonfactory.tree")
PROGRESS_SECONDS = 5.0  # a progress line at most this often during a search


class SandboxConfig(StrictModel):
    """How `code` verification may run model code (generators/verify/sandbox.py)."""

    allow_weak: bool = Field(
        False,
        description="run code without Landlock/seccomp (audit hook and rlimits only): "
        "hostile code may then change files or reach sockets this process can",
    )


class TreeConfig(StrictModel):
    # Where model code may run decides nothing about the text generated.
    NOT_IN_FINGERPRINT: ClassVar[tuple[str, ...]] = ("sandbox",)

    method: Literal["tree"] = "tree"
    rollouts: int = Field(16, ge=1, le=4096)
    width: int = Field(4, ge=1, le=64)
    max_depth: int = Field(16, ge=1, le=256)
    c: float = Field(2.0, ge=0)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_step_tokens: int = Field(512, ge=1)
    verify: tuple[Verifier, ...] = ("equations",)
    # A step with no claim the `equations` verifier can check (a plan, algebra, a unit
    # conversion) is `unverified`. Off by default: on GSM8K's human solution lines about one
    # line in twelve has nothing checkable, so requiring a claim would end about a quarter of
    # correct 4-step solutions; on, such a step is a dead end (`reason: no_claim`).
    require_claim: bool = False
    rollout_samples: int = Field(8, ge=1, le=256)
    max_tokens: int = Field(2048, ge=1)
    traces_per_problem: int = Field(2, ge=1, le=64)
    min_agreement: float = Field(0.5, gt=0, le=1)
    code_timeout: float = Field(5.0, ge=0.01, le=300)
    code_memory_mb: int = Field(512, ge=64, le=65536)
    sandbox: SandboxConfig = SandboxConfig()
    seed: int = 0
    shard_size: int = Field(128, ge=1)

    @field_validator("verify", mode="before")
    @classmethod
    def _verifiers(cls, v):
        """`verify: equations` or a list; run in a fixed order, cheapest first."""
        if v is None:
            return ()
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"a verifier name or a list of them ({', '.join(VERIFIERS)})")
        unknown = [x for x in v if x not in VERIFIERS]
        if unknown:
            raise ValueError(f"unknown verifier {unknown[0]!r}; allowed: {', '.join(VERIFIERS)}")
        return tuple(x for x in VERIFIERS if x in v)
