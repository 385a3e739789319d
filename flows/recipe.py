"""Recipes: the YAML a user writes, validated. An unknown key or a bad value is an error that
names it and says what is allowed.

A recipe's identity (`Recipe.identity`, generators/identity.py): `fingerprint` hashes
everything that changes the generated text (engine and generation settings; not the shard
size, not the filters), and `run_id` adds the problem set (the name is a label). `kind: eval`
makes an eval run, never the same as a data run. The same recipe run twice is the same run,
resumed.

Not here: reading YAML files safely (flows/recipe_files.py).
"""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Annotated, Literal, Union, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from reasonfactory.filters.pipeline import FilterSpec, check_filter_order, parse_filter_spec
from reasonfactory.flows.recipe_files import (  # noqa: F401  (re-exported: callers read files here)
    RecipeError,
    load_recipe_data,
    read_recipe_file,
    read_yaml,
    read_yaml_mapping,
)
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines import ENGINES, SimEngineConfig
from reasonfactory.generators.identity import RunIdentity
from reasonfactory.generators.methods.self_output import SelfOutputConfig
from reasonfactory.generators.problems.families import FAMILIES
from reasonfactory.generators.registry import GENERATORS

MAX_BUILTIN = 1_000_000  # built-in problems are made in memory, all at once
MAX_INT = 2**53  # larger integers in a recipe are typos; they overflow the warehouse's BIGINT


class CurriculumConfig(StrictModel):
    """`problems.curriculum` (gym sources): rounds of `size` new problems each, the next
    round's level chosen from this round's pass rate (generators/problems/gym.py)."""

    rounds: int = Field(ge=1, le=100)
    band: tuple[float, float] = (0.2, 0.8)  # keep the level while the pass rate is inside
    start: int = Field(0, ge=0)  # the first round's level

    @field_validator("band")
    @classmethod
    def _band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] <= v[1] <= 1.0:
            raise ValueError(f"band {list(v)}: expected [low, high] with 0 <= low <= high <= 1")
        return v


GYM_KEYS = ("size", "config", "level", "families", "curriculum")


class ProblemsConfig(StrictModel):
    source: str = Field(
        description="builtin:NAME | FILE.jsonl | FILE.parquet | hf:DIR | DIR/*.jsonl | DIR "
        "| gym:NAME | gym:composite"
    )
    fields: dict[str, str] = Field(default_factory=dict)
    answer_format: Literal["plain", "boxed", "gsm8k"] = "plain"
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    difficulty: tuple[int, int] | None = None
    split: str | None = None
    name: str | None = None
    # gym: sources (reasoning-gym): how many problems, the family's config, its curriculum
    # level, a composite's families ({name: weight} or {name: {weight, level, config}}), and
    # rounds whose level follows the pass rate.
    size: int | None = Field(None, ge=1, le=MAX_BUILTIN)
    config: dict = Field(default_factory=dict)
    level: int | None = Field(None, ge=0)
    families: dict[str, float | dict] | None = None
    curriculum: CurriculumConfig | None = None
    # The loop's rounds: these problems' answers are withheld from the run, so a gold the
    # warehouse holds for them (another run stored one) never judges its traces; the
    # corrected-answer-key re-judging (flows/generate.py `stale_problems`) is off.
    withheld: bool = False

    @model_validator(mode="after")
    def _gym_only(self):
        given = [k for k in GYM_KEYS if getattr(self, k) not in (None, {})]
        if given and not self.source.startswith("gym:"):
            raise ValueError(f"{', '.join(given)}: only for gym: sources (reasoning-gym)")
        if {"size", "seed"} & set(self.config):
            raise ValueError("config: size and seed are problems.size and problems.seed")
        return self

    def gym_identity(self) -> tuple | None:
        """What a gym source adds to the problem set's identity (None for other sources,
        so their run ids stay as they were)."""
        if not self.source.startswith("gym:"):
            return None
        c = self.curriculum.model_dump(mode="json") if self.curriculum else None
        parts = (self.size, self.config, self.level, self.families, c)
        return tuple(json.dumps(p, sort_keys=True) for p in parts)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - {"question", "answer"}
        if unknown:
            raise ValueError(f"unknown field mapping {sorted(unknown)}; allowed: question, answer")
        return v

    @model_validator(mode="after")
    def _builtin_bounds(self):
        family = FAMILIES.get(self.source.removeprefix("builtin:"))
        if self.difficulty is not None:
            lo, hi = self.difficulty
            if lo > hi:
                raise ValueError(f"difficulty [{lo}, {hi}] is reversed; write [low, high]")
            if family is not None and (lo > family.difficulty[1] or hi < family.difficulty[0]):
                raise ValueError(
                    f"difficulty [{lo}, {hi}] is outside {self.source}'s range "
                    f"{list(family.difficulty)}"
                )
            if lo < 0:
                raise ValueError(f"difficulty [{lo}, {hi}] is negative")
        if family is not None and self.limit is not None and self.limit > MAX_BUILTIN:
            raise ValueError(
                f"limit {self.limit}: a built-in family makes at most {MAX_BUILTIN} problems"
            )
        return self


def _tagged_union(models: list[type[BaseModel]], tag: str):
    """The recipe type for a registry: one model, or a union discriminated by `tag`."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator=tag)]  # noqa: UP007


# Built from the registries: registering a generator or an engine is all it takes.
GenerateConfig = _tagged_union([spec.config for spec in GENERATORS.values()], "method")
EngineConfig = _tagged_union([config for config, _ in ENGINES.values()], "kind")


class RunnerConfig(StrictModel):
    """How a run is executed (never part of its identity: it changes no generated text)."""

    # local: the engine in this process (the default). ray: `replicas` engines as Ray actors
    # (flows/ray_runner.py) on a Ray started here (address local), joined (auto), or ray://.
    kind: Literal["local", "ray"] = "local"
    address: str = Field("local", pattern=r"^(local|auto|ray://\S+)$")
    replicas: int = Field(1, ge=1, le=1024)
    gpus_per_replica: int = Field(0, ge=0, le=8)  # vllm: 1, one engine per GPU
    # Shards generated ahead of the one being filtered and stored. None: 1, and for openai one
    # more whenever fewer than `concurrency` requests wait for a slot (slots stay full across
    # shard boundaries). A number fixes the count. 0: shard by shard, nothing overlaps.
    lookahead: int | None = Field(None, ge=0, le=64)
    # Finished shards are stored together, at most this many seconds apart (and at 122,880
    # traces, one DuckDB row group): large inserts are fast, and a kill -9 loses at most this
    # much finished work. 0: store every shard as soon as it is filtered.
    commit_seconds: float = Field(30.0, ge=0)
    # Completions an engine returned wait in memory at most this long before they are stored
    # (their own small transaction): a kill -9 loses at most this much of the replies. Larger
    # is cheaper for fast local engines (each small commit costs; 45 commits of 200,000 sim
    # completions took 2x one bulk insert, bench/bench_flow_ingest.py). 0: as they come.
    journal_seconds: float = Field(5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _ray_only(self):
        ray = (self.address, self.replicas, self.gpus_per_replica) != ("local", 1, 0)
        if self.kind == "local" and ray:
            raise ValueError("address, replicas and gpus_per_replica need runner kind: ray")
        return self


class Recipe(StrictModel):
    name: str = Field(min_length=1)
    problems: ProblemsConfig
    engine: EngineConfig = SimEngineConfig()
    generate: GenerateConfig = SelfOutputConfig()
    filters: list[FilterSpec] = Field(
        default_factory=lambda: [FilterSpec("format"), FilterSpec("answer")]
    )
    runner: RunnerConfig = RunnerConfig()
    # data: traces for training (the default). eval: benchmark answers, scored by `eval`,
    # stored with status 'eval' and never exported; an eval is never the same run as a data run.
    kind: Literal["data", "eval"] = "data"

    @field_validator("generate", "engine", mode="before")
    @classmethod
    def _default_tag(cls, v, info):
        # With several methods (engines) registered, the tag picks the config; a recipe that
        # names none gets the default, as it did when there was only one.
        generate = info.field_name == "generate"
        tag, default = ("method", "self_output") if generate else ("kind", "sim")
        if isinstance(v, dict) and tag not in v:
            return {**v, tag: default}
        return v

    @model_validator(mode="before")
    @classmethod
    def _sane_numbers(cls, data):
        for key, value in _leaves(data):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
                raise ValueError(f"{key}: {_short(value)} is too large (at most {MAX_INT})")
        return data

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, v):
        if not isinstance(v, list):
            raise ValueError("filters is a list, e.g. [answer, format]")
        specs = [parse_filter_spec(item) for item in v]
        check_filter_order(specs)
        return specs

    @property
    def identity(self) -> RunIdentity:
        """What identifies this run and its samples (generators/identity.py)."""
        return RunIdentity.of(self)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def engine_id(self) -> str:
        """The engine's identity in sample keys: its settings that change the text."""
        return self.identity.engine_id

    @property
    def run_id(self) -> str:
        return self.identity.run_id

    @property
    def is_eval(self) -> bool:
        """An eval's recipe (`kind: eval`, flows/evaluate.py): its traces are stored with
        status 'eval', never exported for training."""
        return self.kind == "eval"

    def to_data(self, stamps: bool = True) -> dict:
        """The recipe as plain data, in the form a user writes (round-trips `parse_recipe`).
        `stamps=False` leaves out what was filled in from outside the recipe (a model
        folder's weights stamp): a deployment stores that, so each run stamps afresh."""
        data = self.model_dump(mode="json")
        data["filters"] = [f.name if not f.options else {f.name: f.options} for f in self.filters]
        if not stamps:
            for field in self.engine.STAMPS:
                data["engine"].pop(field, None)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_data(), sort_keys=False)


def parse_recipe(data: dict, origin: str = "recipe") -> Recipe:
    """Validate a recipe mapping; errors name the key, the bad value and what is allowed."""
    if not isinstance(data, dict):
        raise RecipeError(
            f"{origin}: a recipe is a mapping with keys {', '.join(Recipe.model_fields)}"
        )
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(f"{origin}: " + "; ".join(_explain(e) for e in exc.errors())) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file (UTF-8, a BOM allowed; no YAML aliases, no repeated
    keys); every problem is a `RecipeError` naming the file and, where it has one, the line."""
    return parse_recipe(load_recipe_data(path), str(path))


def _explain(err: dict) -> str:
    raw = [p for p in err["loc"] if not str(p).startswith("function-")]
    loc, parent = _walk(raw)
    key = ".".join(loc) or "recipe"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = [f.alias or n for n, f in parent.model_fields.items()] if parent else []
        return f"unknown key {key!r}; allowed: {', '.join(allowed)}"
    if kind == "literal_error":
        return f"{key}: {_short(err['input'])} is not allowed; expected {err['ctx']['expected']}"
    if kind == "union_tag_invalid":
        tag = err["ctx"]["discriminator"].strip("'")
        ctx = err["ctx"]
        return f"{key}.{tag}: {_short(ctx['tag'])} is not allowed; expected {ctx['expected_tags']}"
    if kind == "missing":
        return f"missing key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if isinstance(err.get("input"), dict | list) or "input" not in err:
        return msg if key == "recipe" else f"{key}: {msg}"  # the message names the value
    return f"{key}: {msg} (got {_short(err['input'])})"


def _leaves(data, prefix: str = ""):
    """(dotted key, value) for every scalar in nested recipe data."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), data


def _short(value, limit: int = 80) -> str:
    """A value as an error message shows it: its repr, cut to `limit` characters (never the
    whole of a huge value)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxdict = 6
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _members(annotation) -> list[type[BaseModel]]:
    """The models a field may hold: itself, or the members of a (discriminated) union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _members(arg)]


def _walk(raw: list) -> tuple[list[str], type[BaseModel] | None]:
    """The error location as the user wrote it (union tags dropped), and the model that holds
    its last key. pydantic puts a union's tag in the location: ('generate', 'tree', 'width')."""
    shown: list[str] = []
    model: type[BaseModel] | None = Recipe
    parent = model
    i = 0
    while i < len(raw):
        part = str(raw[i])
        shown.append(part)
        parent = model
        field = model.model_fields.get(part) if model else None
        members = _members(field.annotation) if field else []
        if len(members) > 1 and i + 1 < len(raw):
            i += 1  # the tag picks the member
            members = [m for m in members if _tag_of(m) == raw[i]] or members[:1]
        model = members[0] if members else None
        i += 1
    return shown, parent


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("method", "kind"):
        field = model.model_fields.get(name)
        if field is not None and get_args(field.annotation):
            return get_args(field.annotation)[0]
    return None


DEMO_RECIPE = {
    "name": "demo-arithmetic",
    "problems": {"source": "builtin:arithmetic", "limit": 200, "difficulty": [2, 6], "seed": 0},
    "engine": {"kind": "sim", "error_rate": 0.08, "format_error_rate": 0.03},
    "generate": {"method": "self_output", "samples": 8, "temperature": 0.8, "seed": 0},
    "filters": ["format", "answer"],
}
