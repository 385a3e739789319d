"""The generator registry: method name -> (function, config model). One entry point each.

>>> sorted(GENERATORS)
['distill', 'self_output']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from generators.base import StrictModel
from generators.distill import DistillConfig, distill
from generators.self_output import SelfOutputConfig, self_output


@dataclass(frozen=True)
class GeneratorSpec:
    fn: Callable
    config: type[StrictModel]
    # The prompt templates the method sends: part of the run's fingerprint, so editing one
    # makes new traces instead of resuming old ones.
    prompt: str = ""


GENERATORS: dict[str, GeneratorSpec] = {
    "self_output": GeneratorSpec(self_output, SelfOutputConfig),
    "distill": GeneratorSpec(distill, DistillConfig),
}


def get_generator(method: str) -> GeneratorSpec:
    try:
        return GENERATORS[method]
    except KeyError:
        raise ValueError(
            f"unknown generation method {method!r}; valid: {', '.join(sorted(GENERATORS))}"
        ) from None
