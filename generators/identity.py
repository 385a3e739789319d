"""What identifies a run and a sample: one object, one table, used by run ids, sample keys
and README's "Resume" table.

A **run** is its generation on a problem set: `fingerprint` hashes every setting that
changes generated text (engine, method settings, prompt templates written in code, and
whether it is an eval), `run_id` adds the problem set. A **sample** is keyed by content:
`engine_id` (the engine settings that change text, weights stamp included) and the request
as sent (`sample_key`). Everything else (name, filters, max_tokens, shard size, runner,
timeouts, prices) is a label or a way of running, and a re-run with another value resumes
the same run. `IDENTITY` says so row by row, with the reason; README's table is checked
against it (tests/test_readme.py).

Configs declare what they leave out (`NOT_IN_FINGERPRINT`) and what is filled in from
outside the recipe (`STAMPS`: a model folder's weights, a predictions file's digest), so a
stored deployment drops stamps and each of its runs stamps afresh (`Recipe.to_data`).

Not here: the recipe schema (flows/recipe.py), or deciding which problems a run still has
to do (the progress ledger, flows/generate.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from reasonfactory.warehouse.ids import digest, fingerprint

# Generation settings that change no generated text. `max_tokens` only decides where a
# sample is cut off: a raised budget redoes the truncated samples of the same run.
GENERATE_NOT_IN_FINGERPRINT = frozenset({"shard_size", "max_tokens"})


@dataclass(frozen=True)
class IdentityRow:
    """One line of README's table: a setting, whether it is in the run's identity and in a
    sample's key, and why."""

    setting: str
    run: bool
    sample: bool
    why: str


IDENTITY: tuple[IdentityRow, ...] = (
    IdentityRow(
        "engine kind, model and the engine settings that change text",
        True,
        True,
        "another model or decoding setting writes other text",
    ),
    IdentityRow(
        "a model folder's weights (file names, sizes, modification times)",
        True,
        True,
        "a model trained again into the same folder is another model",
    ),
    IdentityRow(
        "method settings (samples, temperature, top_p, stop, seed, search settings)",
        True,
        True,
        "they change what is asked and sampled",
    ),
    IdentityRow(
        "prompt templates written in code", True, True, "an edited prompt is another request"
    ),
    IdentityRow(
        "kind: eval",
        True,
        False,
        "an eval's traces are benchmark answers, never a data run's; its samples are shared",
    ),
    IdentityRow(
        "problem set (source, fields, answer_format, seed, difficulty; gym: size, config, "
        "level, families, curriculum)",
        True,
        False,
        "the run covers those problems; a sample is keyed by the question as sent",
    ),
    IdentityRow("name", False, False, "a label: a renamed recipe is the same run"),
    IdentityRow("filters", False, False, "a re-run with other filters re-judges what is stored"),
    IdentityRow(
        "max_tokens",
        False,
        False,
        "a raised budget redoes exactly the samples cut off below it",
    ),
    IdentityRow(
        "shard_size, runner, concurrency, timeouts, retries, base_url, API key, prices",
        False,
        False,
        "they change how a run goes, not what it writes",
    ),
)


def output_settings(config: BaseModel, exclude: frozenset[str] = frozenset()) -> dict:
    """A config's settings that change generated text (it may list more to leave out).

    Settings a config added after runs were stored (`ADDED_SETTINGS`) count only when set
    to something other than their default: a run stored before they existed resumes.
    """
    left_out = set(exclude) | set(getattr(config, "NOT_IN_FINGERPRINT", ()))
    fields = type(config).model_fields
    for name in getattr(config, "ADDED_SETTINGS", ()):
        if getattr(config, name) == fields[name].default:
            left_out.add(name)
    return config.model_dump(exclude=left_out)


@dataclass(frozen=True)
class RunIdentity:
    """A recipe's identity (see the module docstring and `IDENTITY`)."""

    kind: Literal["data", "eval"]
    fingerprint: str
    engine_id: str
    run_id: str

    @classmethod
    def of(cls, recipe) -> RunIdentity:
        """The identity of a validated recipe (flows/recipe.py `Recipe`)."""
        engine = output_settings(recipe.engine)
        fp = fingerprint(
            {
                "engine": engine,
                "generate": output_settings(recipe.generate, GENERATE_NOT_IN_FINGERPRINT),
                # Prompt templates written in code (a config's PROMPT): editing one makes new
                # traces instead of resuming old ones.
                "prompt": getattr(recipe.generate, "PROMPT", ""),
                **({"eval": True} if recipe.kind == "eval" else {}),
            }
        )
        p = recipe.problems
        problem_set = (p.source, sorted(p.fields.items()), p.answer_format, p.seed, p.difficulty)
        gym = p.gym_identity()
        if gym is not None:  # only gym sources: other run ids stay as they were
            problem_set = (*problem_set, gym)
        return cls(
            kind=recipe.kind,
            fingerprint=fp,
            engine_id=fingerprint(engine),
            run_id="r_" + digest(fp, problem_set),
        )


def sample_key(engine_id: str, req, index: int) -> str:
    """The content key of sample `index` of a `GenRequest` (0-based within the request).

    >>> from reasonfactory.generators.engines.base import GenRequest
    >>> r = GenRequest(prompt="2 + 2 =", n=4, seed=7, max_tokens=16)
    >>> sample_key("e", r, 3) == sample_key("e", GenRequest(prompt="2 + 2 =", seed=7,
    ...     first_sample=3, max_tokens=4096), 0)
    True
    """
    return "c_" + digest(
        engine_id,
        json.dumps(req.messages, sort_keys=True, ensure_ascii=False),
        req.prefix,
        req.prompt,
        req.temperature,
        req.top_p,
        json.dumps(list(req.stop)),
        req.seed,
        req.first_sample + index,
        *(["logprobs"] if req.logprobs else []),  # a sample without them cannot stand in
        length=24,
    )
