"""`journey`: traces that go wrong, notice it, back up and recover (journey learning).

Two sources, one recipe key (`from`):

- `inject` (default): base traces are sampled exactly as `self_output` samples them (its
  function, the recipe's engine, one batched call); those that pass the format and answer
  checks get up to `detours` injected mistakes, each followed by feedback, a line going
  back and the original step (`generators.methods.journey.inject`). The rest of the trace is
  unchanged and reaches the same answer.
- `tree`: search trees are grown by the registered `tree` method (its settings under
  `tree:`) and each is linearised around a correct path, with real wrong branches from the
  tree as detours (`reasonfactory.generators.methods.journey.from_tree`).

Either way a single run does it all. Each journey trace's `meta.journey` records where
every error, feedback, back-tracking line and correction sits (character offsets into the
thought and paragraph indexes), the error type, the claims, and the source trace or tree,
so `SELECT ... FROM traces, unnest(json_extract(meta, '$.journey.errors[*]')) AS e` works.
With `keep_sources` (default) the source traces (self_output or tree) are stored beside
the journeys, under their own method. A problem with no usable source gets one rejected
journey row saying why (`no_correct_base`, `no_correct_path`, `no_detour`, and
`steps_not_in_language` for `language: zh` over steps the engine wrote in English).

Not here: the phrases, the perturbations, the linearisation (their own modules).
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from typing import Literal

import polars as pl
from pydantic import ConfigDict, Field, ValidationError, field_validator
from reasonfactory.generators.base import (
    WORKING_COLUMNS,
    Generated,
    RunContext,
    StrictModel,
    approx_tokens,
)
from reasonfactory.generators.methods.journey.from_tree import linearise_tree
from reasonfactory.generators.methods.journey.inject import ERROR_TYPES, inject_errors
from reasonfactory.generators.methods.journey.text import Journey
from reasonfactory.generators.methods.self_output import SelfOutputConfig, self_output
from reasonfactory.generators.methods.tree import TreeConfig
from reasonfactory.generators.methods.tree import tree as grow_trees
from reasonfactory.generators.verify.answer import Outcome
from reasonfactory.generators.verify.answer_pool import judge_answers
from reasonfactory.generators.verify.answers import count_boxed
from reasonfactory.generators.verify.checkers import attach_checkers, problem_checker
from reasonfactory.generators.verify.judge import claim_holds
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.ids import digest, trace_id
from reasonfactory.warehouse.schema import TRACES

ErrorType = Literal["arithmetic_slip", "sign_error", "wrong_operand", "dropped_term"]


class JourneyConfig(StrictModel):
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    method: Literal["journey"] = "journey"
    from_: Literal["inject", "tree"] = Field("inject", alias="from")
    detours: int = Field(1, ge=1, le=16)
    language: Literal["en", "zh"] = "en"
    error_types: tuple[ErrorType, ...] = ERROR_TYPES
    per_problem: int = Field(1, ge=1, le=64)  # journey traces per problem
    keep_sources: bool = True  # store the base traces / tree traces too
    # from: inject -- the base traces, sampled as self_output samples them
    samples: int = Field(4, ge=1, le=4096)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    min_agreement: float = Field(0.5, gt=0, le=1)
    seed: int = 0
    # from: tree -- the tree method's own settings
    tree: dict = Field(default_factory=dict)
    shard_size: int = Field(512, ge=1)

    @field_validator("error_types")
    @classmethod
    def _some_types(cls, v):
        if not v:
            raise ValueError(f"name at least one error type: {', '.join(ERROR_TYPES)}")
        return tuple(dict.fromkeys(v))

    @field_validator("tree")
    @classmethod
    def _tree_settings(cls, v):
        _tree_config(v)  # checked when the recipe is read, not half-way through a run
        return v

    def base_config(self) -> SelfOutputConfig:
        return SelfOutputConfig(
            samples=self.samples,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            min_agreement=self.min_agreement,
        )


def _tree_config(settings: dict) -> TreeConfig:
    data = {"method": "tree", **settings}
    try:
        return TreeConfig.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"tree settings: {detail}") from None


def journey(problems: pl.DataFrame, engine, config: JourneyConfig, ctx: RunContext) -> Generated:
    """Journey traces for a shard of problems (and, with `keep_sources`, their sources).

    >>> from reasonfactory.generators.engines.sim import SimEngine
    >>> from reasonfactory.generators.problems.sources import load_problems
    >>> out = journey(load_problems("builtin:arithmetic", limit=3), SimEngine(0.1),
    ...               JourneyConfig(samples=2), RunContext("run", "fp", "sim"))
    >>> sorted(set(out.traces["method"]))
    ['journey', 'self_output']
    """
    if config.from_ == "tree":
        return _from_tree(problems, engine, config, ctx)
    return _from_inject(problems, engine, config, ctx)


_THINK_TAG = re.compile("</?think>")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _usable_bases(base: pl.DataFrame) -> list[bool]:
    """Base traces a journey can be built on: finished, one closed thought, one boxed answer,
    and the right answer (the same structural rules as the `format` filter, and the answer
    check every filter and method uses)."""
    if base.height == 0:
        return []
    shaped = [
        finish not in ("length", "error")
        and bool(closed)
        and bool((thought or "").strip())
        and not _THINK_TAG.search(thought or "")
        and count_boxed(resp) == 1
        for finish, closed, thought, resp in base.select(
            "finish_reason", "think_closed", "thought", "response"
        ).iter_rows()
    ]
    checkers = base["checker"].to_list() if "checker" in base.columns else None
    outcomes = judge_answers(base["gold"].to_list(), base["predicted"].to_list(), checkers)
    return [s and o is Outcome.CORRECT for s, o in zip(shaped, outcomes, strict=True)]


def _from_inject(problems, engine, config: JourneyConfig, ctx: RunContext) -> Generated:
    base = attach_checkers(
        self_output(problems, engine, config.base_config(), ctx).traces, problems
    )
    usable = _usable_bases(base)
    bases: dict[str, list[dict]] = {}
    for row, ok in zip(base.iter_rows(named=True), usable, strict=True):
        if ok:
            bases.setdefault(row["problem_id"], []).append(row)
    now = datetime.now(UTC)
    rows = []
    for problem in problems.iter_rows(named=True):
        chosen = bases.get(problem["problem_id"], [])[: config.per_problem]
        if not chosen:
            rows.append(
                _row(
                    problem,
                    -1,
                    Journey("", ()),
                    "",
                    None,
                    {},
                    config,
                    ctx,
                    now,
                    reason="no_correct_base",
                )
            )
            continue
        for b in chosen:
            sample = json.loads(b["meta"])["sample_index"]
            rng = random.Random(digest(config.seed, b["trace_id"], "journey"))
            if config.language == "zh" and not _CJK.search(b["thought"]):
                # Chinese feedback inside English steps is a mixed-language trace: the
                # engine must write Chinese steps (the sim does with `language: zh`)
                rows.append(
                    _row(
                        problem,
                        sample,
                        Journey(b["thought"], ()),
                        b["response"],
                        b["predicted"],
                        {"from": "inject", "source_trace_id": b["trace_id"]},
                        config,
                        ctx,
                        now,
                        reason="steps_not_in_language",
                    )
                )
                continue
            made = inject_errors(
                b["thought"],
                detours=config.detours,
                rng=rng,
                types=config.error_types,
                language=config.language,
                question=problem["question"],
            )
            source = {"from": "inject", "source_trace_id": b["trace_id"]}
            rows.append(
                _row(
                    problem,
                    sample,
                    made or Journey(b["thought"], ()),
                    b["response"],
                    b["predicted"],
                    source,
                    config,
                    ctx,
                    now,
                    score=b["score"],
                    gold=b["gold"],
                    gold_source=b["gold_source"],
                    reason=None if made else "no_detour",
                )
            )
    journeys = _frame(rows)
    return Generated(traces=_with_sources(journeys, base, config))


def _from_tree(problems, engine, config: JourneyConfig, ctx: RunContext) -> Generated:
    try:
        tree_config = _tree_config(config.tree)
    except ValueError as exc:
        raise UserError(f"generate.tree: {exc}") from None
    grown = grow_trees(problems, engine, tree_config, ctx)
    nodes = grown.nodes if grown.nodes is not None else pl.DataFrame()
    per_problem = (
        nodes.partition_by("problem_id", as_dict=True, maintain_order=True) if nodes.height else {}
    )
    now = datetime.now(UTC)
    rows = []
    for problem in problems.iter_rows(named=True):
        tree = per_problem.get((problem["problem_id"],))
        if tree is None:
            rows.append(
                _row(
                    problem,
                    -1,
                    Journey("", ()),
                    "",
                    None,
                    {"from": "tree"},
                    config,
                    ctx,
                    now,
                    reason="no_correct_path",
                )
            )
            continue
        tree_id = tree["tree_id"][0]
        seen: set[str] = set()
        for k in range(config.per_problem):
            rng = random.Random(digest(config.seed, tree_id, k))
            out = linearise_tree(tree, detours=config.detours, language=config.language, rng=rng)
            thought = out.journey.thought if out.journey else ""
            if k and (thought in seen or out.reason):
                continue  # no new detour to show
            seen.add(thought)
            source = {"from": "tree", "tree_id": tree_id, "shortcut": list(out.shortcut)}
            qs = [
                q
                for n, q in zip(tree["node_id"], tree["q_value"], strict=True)
                if n in out.shortcut[1:] and q is not None
            ]
            rows.append(
                _row(
                    problem,
                    k,
                    out.journey or Journey("", ()),
                    out.response or "",
                    out.predicted,
                    source,
                    config,
                    ctx,
                    now,
                    score=sum(qs) / len(qs) if qs else None,
                    reason=out.reason,
                )
            )
    journeys = _frame(rows)
    out = Generated(traces=_with_sources(journeys, grown.traces, config), nodes=grown.nodes)
    return out


def _row(
    problem,
    sample,
    made: Journey,
    response,
    predicted,
    source,
    config,
    ctx,
    now,
    *,
    score=None,
    gold=None,
    gold_source=None,
    reason=None,
) -> dict:
    if reason is None and not verify_journey(made):
        reason = "journey_invalid"  # a bug guard: every error must be followed by its correction
    gold = gold if gold is not None else problem["gold"]
    meta = {
        "fingerprint": ctx.fingerprint,
        "sample_index": sample,
        "seed": config.seed,
        "gold_source": gold_source or ("problem" if problem["gold"] is not None else "none"),
        "journey": {
            **source,
            "language": config.language,
            "n_detours": len(made.errors),
            "errors": list(made.errors),
        },
    }
    return {
        "trace_id": trace_id(problem["problem_id"], "journey", ctx.fingerprint, sample),
        "problem_id": problem["problem_id"],
        "run_id": ctx.run_id,
        "method": "journey",
        "model": ctx.model,
        "thought": made.thought,
        "response": response,
        "predicted": predicted,
        "n_tokens": approx_tokens(made.thought, response),  # rewritten text: approximation
        "score": score,
        "created_at": now,
        "meta": json.dumps(meta, ensure_ascii=False),
        "gold": gold,
        "gold_source": meta["gold_source"],
        "finish_reason": "stop",
        "think_closed": True,
        "checker": problem_checker(problem),
        "generator_reason": reason,
    }


def verify_journey(made: Journey) -> bool:
    """Each detour: wrong step, then feedback, then the going-back line, then the correction,
    in that order inside the thought; its claim false and its corrected claim true."""
    for e in made.errors:
        order = [
            e["error_start"],
            e["error_end"],
            e["feedback_start"],
            e["feedback_end"],
            e["backtrack_start"],
            e["backtrack_end"],
            e["correction_start"],
            e["correction_end"],
        ]
        if None in order or order != sorted(order) or order[-1] > len(made.thought):
            return False
        if (
            claim_holds(e["wrong_claim"]) is not False
            or claim_holds(e["corrected_claim"]) is not True
        ):
            return False
    return True


def _frame(rows: list[dict]) -> pl.DataFrame:
    schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    return pl.DataFrame(rows, schema={k: schema[k] for k in rows[0]} if rows else schema)


def _with_sources(journeys: pl.DataFrame, sources: pl.DataFrame | None, config) -> pl.DataFrame:
    if not config.keep_sources or sources is None or sources.height == 0:
        return journeys
    return pl.concat([journeys, sources], how="diagonal_relaxed")
