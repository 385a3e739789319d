"""The generator registry: method name -> (function, config model). One entry point each.

>>> sorted(GENERATORS)
['beam', 'distill', 'dvts', 'journey', 'revise', 'self_output', 'sos', 'tree']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.methods.beam import BeamConfig, DvtsConfig, beam
from reasonfactory.generators.methods.distill import DistillConfig, distill
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.methods.revise import ReviseConfig, revise
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.methods.sos import SosConfig, sos
from reasonfactory.generators.methods.tree import TreeConfig, tree


@dataclass(frozen=True)
class GeneratorSpec:
    fn: Callable
    config: type[StrictModel]
    uses_engine: bool = True  # False: symbolic (sos); the flow skips engine checks for it


GENERATORS: dict[str, GeneratorSpec] = {
    "self_output": GeneratorSpec(self_output, SelfOutputConfig),
    "distill": GeneratorSpec(distill, DistillConfig),
    "sos": GeneratorSpec(sos, SosConfig, uses_engine=False),
    "journey": GeneratorSpec(journey, JourneyConfig),
    "tree": GeneratorSpec(tree, TreeConfig),
    "beam": GeneratorSpec(beam, BeamConfig),
    "dvts": GeneratorSpec(beam, DvtsConfig),
    "revise": GeneratorSpec(revise, ReviseConfig),
}


def get_generator(method: str) -> GeneratorSpec:
    try:
        return GENERATORS[method]
    except KeyError:
        raise ValueError(
            f"unknown generation method {method!r}; valid: {', '.join(sorted(GENERATORS))}"
        ) from None
