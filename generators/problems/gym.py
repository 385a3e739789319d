"""Problems made by reasoning-gym (an optional extra): `gym:NAME` and `gym:composite`.

`gym:NAME` makes `size` problems of one family with reasoning-gym's own generator, seeded
(`seed`, spread as `SEED_STRIDE` says), with its `config` settings; `level: N` first sets
every difficulty attribute of the family's curriculum to level N (capped at its top level),
then `config` overrides. A
`gym:composite` source mixes families by weight (reasoning-gym's CompositeDataset), each
with its own config and level: `families: {chain_sum: 2, maze: {weight: 1, level: 1}}`.

Each problem is a row like any other: `source` is `gym:FAMILY` (so accuracy per source is
accuracy per family), gold the entry's answer, and `meta` holds `family`, `category`,
`difficulty` (the family's difficulty parameters as reasoning-gym reports them), `level`,
`seed`, `index` and `checker` (gym_checker.py: family, config and the entry's metadata,
enough to score an answer again later without regenerating). Families with no single
reference answer (their scorer accepts any valid solution) are refused, by name: the answer
filter needs a gold.

Not here: scoring answers (generators/verify/gym_checker.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from reasonfactory.generators.verify.gym_checker import INSTALL_HINT, gym_spec
from reasonfactory.warehouse.errors import UserError

PREFIX = "gym:"
COMPOSITE = "composite"
# Families whose entries have no reference answer (answer None): any valid solution scores.
NO_REFERENCE = frozenset(
    {"boxnet", "graph_color", "propositional_logic", "rubiks_cube", "rush_hour"}
)


class GymError(UserError):
    """A gym source that cannot be made as asked (an unknown family, a bad config)."""


@dataclass(frozen=True)
class GymFamily:
    """One family of a gym source: its weight in a composite, level and config overrides."""

    name: str
    weight: float = 1.0
    level: int | None = None
    config: dict = field(default_factory=dict)


def families_of(
    source: str, config: dict | None = None, level: int | None = None, families=None
) -> list[GymFamily]:
    """The families a gym source makes: `gym:NAME` with `config` and `level`, or
    `gym:composite` with `families` (name -> weight, or name -> {weight, level, config}).

    >>> families_of("gym:composite", families={"maze": 2, "gcd": {"level": 1}})[1]
    GymFamily(name='gcd', weight=1.0, level=1, config={})
    """
    name = source.removeprefix(PREFIX)
    if name != COMPOSITE:
        if families:
            raise GymError(f"{source}: `families` is for gym:composite; use config and level")
        return [GymFamily(name, 1.0, level, dict(config or {}))]
    if not families or config:
        raise GymError(
            "gym:composite needs `families` (e.g. {chain_sum: 2, maze: 1}) and takes no "
            "`config` of its own (give each family its config)"
        )
    out = []
    for fname, spec in families.items():
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            out.append(GymFamily(fname, float(spec), level))
        elif isinstance(spec, dict) and set(spec) <= {"weight", "level", "config"}:
            out.append(
                GymFamily(
                    fname,
                    float(spec.get("weight", 1.0)),
                    spec.get("level", level),
                    dict(spec.get("config") or {}),
                )
            )
        else:
            raise GymError(
                f"families.{fname}: expected a weight or {{weight, level, config}}, got {spec!r}"
            )
        if out[-1].weight <= 0:
            raise GymError(f"families.{fname}: weight {out[-1].weight} must be positive")
    return out


def next_level(level: int, pass_rate: float | None, band: tuple[float, float], top: int) -> int:
    """The next round's level: one up when the pass rate is over the band, one down when it
    is under, the same inside it (or with nothing checked), within 0..top.

    >>> next_level(1, 0.9, (0.2, 0.8), 3), next_level(1, 0.1, (0.2, 0.8), 3)
    (2, 0)
    >>> next_level(3, 1.0, (0.2, 0.8), 3), next_level(2, 0.5, (0.2, 0.8), 3)
    (3, 2)
    """
    low, high = band
    if pass_rate is None or low <= pass_rate <= high:
        return level
    return min(level + 1, top) if pass_rate > high else max(level - 1, 0)


def rg():
    """The reasoning_gym package, or a GymError with the install command."""
    try:
        import reasoning_gym
    except ImportError:
        raise GymError(f"gym: sources need reasoning-gym. {INSTALL_HINT}") from None
    return reasoning_gym


def family_names() -> list[str]:
    """Every family reasoning-gym registers that this source can make (a reference answer)."""
    return sorted(set(rg().factory.DATASETS) - NO_REFERENCE - {COMPOSITE})


def check_family(name: str) -> None:
    names = family_names()
    if name in NO_REFERENCE:
        raise GymError(
            f"gym:{name} has no reference answer (its scorer accepts any valid solution); "
            "not supported as a problem source"
        )
    if name not in names:
        raise GymError(f"unknown reasoning-gym family {name!r}; known: {', '.join(names)}")


def top_level(name: str) -> int:
    """The family's highest curriculum level (0 when it has no curriculum).

    >>> top_level("chain_sum") >= 3
    True
    """
    factory = rg().factory
    if not factory.has_curriculum(name):
        return 0
    curriculum = factory.create_curriculum(name)
    return max(len(a.levels) for a in curriculum.attributes.values()) - 1


def level_config(name: str, level: int) -> dict:
    """The config settings of the family's curriculum at `level` (each attribute capped at
    its own top), as plain JSON: reasoning-gym's default range context (inclusive ranges).

    >>> level_config("chain_sum", 1)
    {'min_terms': 2, 'max_terms': 3, 'min_digits': 1, 'max_digits': 2}
    """
    factory = rg().factory
    if not factory.has_curriculum(name):
        raise GymError(f"gym:{name} has no difficulty levels (no reasoning-gym curriculum)")
    curriculum = factory.create_curriculum(name)
    for attr in curriculum.attributes.values():
        curriculum.set_attr_level(attr.name, min(level, len(attr.levels) - 1))
    made = curriculum.generate_configuration()
    names = []
    for attr in curriculum.attributes.values():
        names += [
            getattr(attr, f, None) for f in ("lower_field_name", "upper_field_name", "field_name")
        ]
    return {n: _plain(getattr(made, n)) for n in names if isinstance(n, str)}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def family_config(family: GymFamily) -> dict:
    """The config settings a family is made with: its level's, then its own overrides."""
    base = level_config(family.name, family.level) if family.level is not None else {}
    return {**base, **family.config}


def make_gym_problems(families: list[GymFamily], size: int, seed: int) -> list[dict]:
    """Rows of the `problems` table: `size` problems of one family, or a weighted mix.

    >>> rows = make_gym_problems([GymFamily("chain_sum")], 2, 0)
    >>> rows[0]["source"], json.loads(rows[0]["meta"])["family"]
    ('gym:chain_sum', 'chain_sum')
    """
    from reasonfactory.warehouse.ids import problem_id

    for f in families:
        check_family(f.name)
    configs = {f.name: family_config(f) for f in families}
    levels = {f.name: f.level for f in families}
    try:
        dataset = _dataset(families, configs, size, seed)
        entries = _entries(dataset, size)
    except (AssertionError, TypeError, ValueError) as exc:  # reasoning-gym's config checks
        names = ", ".join(f.name for f in families)
        raise GymError(f"gym:{names}: reasoning-gym refused the config ({exc})") from None
    rows = []
    for index, entry in entries:
        metadata = entry["metadata"]
        name = metadata.get("source_dataset", families[0].name)
        meta = {
            "family": name,
            "category": _category(name),
            "difficulty": metadata.get("difficulty"),
            "level": levels.get(name),
            "seed": seed,
            "index": index,
            "checker": gym_spec(name, configs[name], metadata),
        }
        source = PREFIX + name
        rows.append(
            {
                "problem_id": problem_id(source, entry["question"]),
                "source": source,
                "question": entry["question"],
                "gold": str(entry["answer"]),
                "meta": json.dumps(meta, ensure_ascii=False, default=_plain),
            }
        )
    return rows


def _entries(dataset, size: int) -> list[tuple[int, dict]]:
    """`size` (index, entry) pairs of distinct questions (a question drawn again would be the
    same problem). An empty reference answer (`ab` can end empty) reads as no answer here,
    so such entries are skipped too; later indexes are drawn instead (up to 4x `size`)."""
    out, seen, index = [], set(), 0
    while len(out) < size and index < 4 * size + 100:
        entry = dataset[index]
        if str(entry["answer"]).strip() and entry["question"] not in seen:
            seen.add(entry["question"])
            out.append((index, entry))
        index += 1
    return out


# reasoning-gym draws entry i of seed s from Random(s + i): seeds 11 and 12 share all but one
# problem. Our seed s is its seed s * SEED_STRIDE, so nearby seeds (and curriculum rounds)
# share none (a set draws at most 4 * 1,000,000 + 100 entries).
SEED_STRIDE = 2**24


def _dataset(families: list[GymFamily], configs: dict, size: int, seed: int):
    lib = rg()
    seed = seed * SEED_STRIDE
    if len(families) == 1:
        return lib.create_dataset(
            families[0].name, size=size, seed=seed, **configs[families[0].name]
        )
    from reasoning_gym.composite import CompositeConfig, CompositeDataset, DatasetSpec

    specs = [DatasetSpec(f.name, f.weight, dict(configs[f.name])) for f in families]
    return CompositeDataset(CompositeConfig(size=size, seed=seed, datasets=specs))


def _category(name: str) -> str:
    module = rg().factory.DATASETS[name][0].__module__.split(".")
    return module[1] if len(module) >= 3 else "other"
