"""The generator registry: method name -> (function, config model). One entry point each.

>>> sorted(GENERATORS)
['self_output', 'tree']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from generators.base import StrictModel
from generators.self_output import SelfOutputConfig, self_output
from generators.tree import TreeConfig, tree


@dataclass(frozen=True)
class GeneratorSpec:
    fn: Callable
    config: type[StrictModel]


GENERATORS: dict[str, GeneratorSpec] = {
    "self_output": GeneratorSpec(self_output, SelfOutputConfig),
    "tree": GeneratorSpec(tree, TreeConfig),
}


def get_generator(method: str) -> GeneratorSpec:
    try:
        return GENERATORS[method]
    except KeyError:
        raise ValueError(
            f"unknown generation method {method!r}; valid: {', '.join(sorted(GENERATORS))}"
        ) from None
