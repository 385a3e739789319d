"""Recipes: the YAML a user writes, validated. An unknown key or a bad value is an error that
names it and says what is allowed.

A recipe's identity: `fingerprint` hashes everything that changes the generated text
(engine and generation settings; not the shard size, not the filters), and `run_id` adds the
problem set (the name is a label); an eval's fingerprint is never a data run's. The same
recipe run twice is the same run, resumed.

Long on purpose: one schema, each section's validation next to its fields, so that every
error can name the key it is about.
"""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Annotated, Literal, Union, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from reasonfactory.filters.pipeline import FilterSpec, check_filter_order, parse_filter_spec
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines import ENGINES, SimEngineConfig
from reasonfactory.generators.methods.self_output import SelfOutputConfig
from reasonfactory.generators.problems.families import FAMILIES
from reasonfactory.generators.registry import GENERATORS
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.evals import EVAL_PREFIX
from reasonfactory.warehouse.ids import digest, fingerprint

# Fields of the generation config that do not change what is generated. `max_tokens` only
# decides where a sample is cut off: a raised budget redoes the truncated samples of the same
# run instead of starting a new one (generators/resume.py).
NOT_IN_FINGERPRINT = {"shard_size", "max_tokens"}


def output_settings(config: BaseModel, exclude: set[str] = frozenset()) -> dict:
    """A config's settings that change generated text (it may list more to leave out)."""
    return config.model_dump(exclude=set(exclude) | set(getattr(config, "NOT_IN_FINGERPRINT", ())))


class RecipeError(UserError):
    """A recipe that does not validate."""


MAX_BUILTIN = 1_000_000  # built-in problems are made in memory, all at once
MAX_INT = 2**53  # larger integers in a recipe are typos; they overflow the warehouse's BIGINT


class ProblemsConfig(StrictModel):
    source: str = Field(
        description="builtin:NAME | FILE.jsonl | FILE.parquet | hf:DIR | DIR/*.jsonl | DIR"
    )
    fields: dict[str, str] = Field(default_factory=dict)
    answer_format: Literal["plain", "boxed", "gsm8k"] = "plain"
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    difficulty: tuple[int, int] | None = None
    split: str | None = None
    name: str | None = None

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
    def fingerprint(self) -> str:
        return fingerprint(
            {
                "engine": output_settings(self.engine),
                "generate": output_settings(self.generate, NOT_IN_FINGERPRINT),
                # Prompt templates written in code (a config's PROMPT): editing one makes new
                # traces instead of resuming old ones.
                "prompt": getattr(self.generate, "PROMPT", ""),
                # An eval's traces are benchmark answers: never the same run, nor the same
                # progress ledger, as a data run's (stored completions are still reused).
                **({"eval": True} if self.is_eval else {}),
            }
        )

    @property
    def engine_id(self) -> str:
        """The engine's identity in sample keys: its settings that change the text."""
        return fingerprint(output_settings(self.engine))

    @property
    def run_id(self) -> str:
        p = self.problems
        problem_set = (p.source, sorted(p.fields.items()), p.answer_format, p.seed, p.difficulty)
        # The name is a label: the same generation on the same problems is the same run.
        return "r_" + digest(self.fingerprint, problem_set)

    @property
    def is_eval(self) -> bool:
        """An eval's recipe (flows/evaluate.py): its traces are stored with status 'eval'."""
        return self.name.startswith(EVAL_PREFIX)

    def to_data(self) -> dict:
        """The recipe as plain data, in the form a user writes (round-trips `parse_recipe`)."""
        data = self.model_dump(mode="json")
        data["filters"] = [f.name if not f.options else {f.name: f.options} for f in self.filters]
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
    path = Path(path)
    return parse_recipe(read_recipe_file(path), str(path))


def read_recipe_file(path: Path):
    """A recipe file's YAML as data (see `load_recipe` for the rules)."""
    if not path.exists():
        raise RecipeError(f"{path}: no such recipe file")
    if not path.is_file():
        raise RecipeError(f"{path}: is a folder, not a recipe file")
    raw = path.read_bytes()
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {len(raw)} bytes; a recipe is at most {MAX_RECIPE_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(
            f"{path} line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None
    return read_yaml(text, str(path))


MAX_RECIPE_BYTES = 1_000_000


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (a 1 KB alias bomb expands to gigabytes) and with
    repeated keys an error (PyYAML keeps the last one silently)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem=f"alias *{event.anchor} (YAML anchors and aliases are not allowed)",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                continue
            if repeated:
                raise yaml.MarkedYAMLError(
                    problem=f"key {str(key)[:60]!r} appears twice",
                    problem_mark=key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


def read_yaml(text: str, origin: str):
    """YAML text as data, with `_RecipeLoader`'s rules; errors name `origin` and the line."""
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506  (a SafeLoader subclass)
        # "\ud800" escapes make lone surrogates: not text, and nothing downstream can print it.
        json.dumps(data, default=str, ensure_ascii=False).encode("utf-8")
        return data
    except UnicodeEncodeError:
        raise RecipeError(f"{origin}: a \\ud800-\\udfff escape that is not a character") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{origin}{where}: not valid YAML ({str(problem)[:200]})") from None
    except RecursionError:
        raise RecipeError(f"{origin}: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # PyYAML's constructors raise these
        raise RecipeError(f"{origin}: not a valid value ({str(exc)[:120]})") from None


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


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML file that must hold a mapping (a loop, an eval recipe, training settings);
    errors name the file and, for bad YAML, the line.

    >>> try:
    ...     read_yaml_mapping("no-such.yaml", "loop file")
    ... except RecipeError as exc:
    ...     print(exc)
    no-such.yaml: no such loop file
    """
    path = Path(path)
    if not path.exists():
        raise RecipeError(f"{path}: no such {what}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RecipeError(
            f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a {what} is a mapping of keys to values")
    return data
