"""`beam` and `dvts`: step-level search guided by a step scorer (a PRM), batched across problems.

As search-and-learn's procedures (`../shared/ALGORITHMS.md`), one step = one paragraph of the
step protocol (`generators/prompts.py`), sampled as `tree` samples it (`n = width`, stop at
the blank line that ends a step), and every depth is ONE engine call for all problems of the
shard plus ONE scorer call for all the new steps:

- `beam`: `beams` paths per problem. The root is asked for `beams * width` first steps; after
  that every live path is asked for `width` next steps; of all a problem's new steps the
  `beams` best by the path's aggregated score (`aggregate`: last, min or prod of its step
  scores) live on. A step that closes the thought ends its path (it gets its answer
  paragraph) and the problem keeps that many fewer live paths.
- `dvts` (diverse verifier tree search): `beams` independent subtrees per problem; each asks
  `width` next steps of its own path only and keeps its best one. Subtrees never compare
  scores with each other, so they stay apart (their request seeds differ by subtree).

The search stops at a closed thought or `max_depth`. The problem's traces are its finished
paths ranked by aggregated score, best first (`traces_per_problem`; trace `score` = that
score); the first is the search's answer. Every expanded step is a node of the problem's tree
(`nodes` table, `meta.prm_score`), and finished answers are scored against the gold and
backed up as in `tree` (`q_value`), so `export prm/dpo` and the tree viewer read beam runs.

The scorer (`scorer`): `prm`, a PRM folder `train --kind prm` wrote (generators/engines/prm.py),
or `equations`, our arithmetic verifier as a step scorer (1 a step whose claims all recompute,
0 one with a false claim, 0.5 nothing checkable): an oracle on arithmetic steps, for tests and
as the ceiling a trained PRM is compared with.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Literal

import polars as pl
from pydantic import Field, field_validator
from reasonfactory.generators.base import WORKING_COLUMNS, Generated, RunContext, StrictModel
from reasonfactory.generators.engines.base import Engine, GenRequest
from reasonfactory.generators.engines.prm import Aggregate, PrmConfig, aggregate, prm_for
from reasonfactory.generators.methods.tree.mcts import Node, path_to
from reasonfactory.generators.methods.tree.rows import TRACE_COLUMNS, node_rows
from reasonfactory.generators.methods.tree.search import (
    Search,
    _generate,
    _prefix,
    _seed,
    expand,
    pending_answer,
    plant_search,
    request_for,
    settle,
    write_answer,
)
from reasonfactory.generators.prompts import STEP_BOUNDARY, build_messages
from reasonfactory.generators.verify.steps import check_equations
from reasonfactory.warehouse.ids import trace_id
from reasonfactory.warehouse.schema import NODES, TRACES


class EquationsScorer(StrictModel):
    """`scorer: {kind: equations}`: each step's arithmetic claims recomputed (`check_equations`)."""

    kind: Literal["equations"] = "equations"

    def score_steps(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return [[_equations_score(step) for step in steps] for _, steps in items]


@lru_cache(maxsize=65536)
def _equations_score(step: str) -> float:
    # Cached: a path's earlier steps come back at every depth.
    return {True: 1.0, False: 0.0, None: 0.5}[check_equations(step).ok]


class BeamConfig(StrictModel):
    method: Literal["beam"] = "beam"
    beams: int = Field(4, ge=1, le=256, description="paths kept per problem (N)")
    width: int = Field(4, ge=1, le=64, description="next steps sampled per path (M)")
    max_depth: int = Field(12, ge=1, le=256)
    aggregate: Aggregate = "min"  # generators/engines/prm.py says why
    scorer: Annotated[PrmConfig | EquationsScorer, Field(discriminator="kind")]
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_step_tokens: int = Field(512, ge=1)
    max_tokens: int = Field(2048, ge=1)
    traces_per_problem: int = Field(1, ge=1, le=256)
    seed: int = 0
    shard_size: int = Field(128, ge=1)

    @field_validator("scorer", mode="before")
    @classmethod
    def _prm_by_default(cls, v):
        """`scorer: {model: DIR}` is a PRM (`kind: prm` may be left out)."""
        return {"kind": "prm", **v} if isinstance(v, dict) and "kind" not in v else v


class DvtsConfig(BeamConfig):
    method: Literal["dvts"] = "dvts"  # type: ignore[assignment]


class _Beams:
    """One problem's search: its tree (a `tree` Search) and its live and finished paths."""

    def __init__(self, s: Search, config: BeamConfig):
        self.s = s
        subtrees = config.beams if config.method == "dvts" else 1
        self.live: list[tuple[int, Node]] = [(k, s.root) for k in range(subtrees)]
        self.done: list[Node] = []  # closing steps (their answer child follows)


def _plant(problem: dict, config: BeamConfig, ctx: RunContext) -> Search:
    # The rng is unused: beam search draws nothing itself.
    return plant_search(problem, ctx, build_messages(problem["question"]), random.Random(0))


def _request(b: _Beams, subtree: int, node: Node, config: BeamConfig) -> GenRequest:
    n = config.width
    if config.method == "beam" and node.kind == "root":
        n = config.beams * config.width  # the first depth fills every beam at once
    return GenRequest(
        messages=b.s.messages,
        prefix=_prefix(node),
        n=n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_step_tokens,
        stop=(STEP_BOUNDARY,),
        seed=_seed(config.seed, b.s.problem_id, f"{subtree}/{node.node_id}", "beam"),
        problem_id=b.s.problem_id,
    )


def _steps(node: Node) -> list[str]:
    return [n.text for n in path_to(node) if n.kind == "step"]


def _path_score(node: Node, how: Aggregate) -> float:
    return aggregate([n.prm_score for n in path_to(node) if n.kind == "step"], how)


def search_beams(searches: list[_Beams], engine: Engine, scorer, config: BeamConfig) -> None:
    """Every depth: one engine call for all live paths, one scorer call for all new steps."""
    for _ in range(config.max_depth):
        jobs = [(b, k, node) for b in searches for k, node in b.live]
        if not jobs:
            break
        results = _generate(engine, [_request(b, k, node, config) for b, k, node in jobs])
        fresh: list[tuple[_Beams, int, Node]] = []
        for (b, k, node), completions in zip(jobs, results, strict=True):
            for child, answer in expand(node, completions):
                settle(b.s, child, answer)  # a closing step gets its answer child
                if child.kind == "step" and not child.terminal:
                    fresh.append((b, k, child))
        scores = scorer.score_steps([(b.s.question, _steps(c)) for b, _, c in fresh])
        for (_, _, child), steps in zip(fresh, scores, strict=True):
            child.prm_score = steps[-1]
        for b in searches:
            _select(b, [(k, c) for bb, k, c in fresh if bb is b], config)
    for b in searches:
        for _, node in b.live:  # still thinking at max_depth
            node.terminal, node.reason = True, "max_depth"
        b.live = []
    pending = [(b, n) for b in searches for d in b.done for n in d.children if pending_answer(n)]
    answers = _generate(engine, [request_for(b.s, n, config) for b, n in pending])
    for (b, node), completions in zip(pending, answers, strict=True):
        write_answer(b.s, node, completions[0] if completions else None)


def _select(b: _Beams, candidates: list[tuple[int, Node]], config: BeamConfig) -> None:
    """Keep the best candidates: the problem's `beams` best (beam), each subtree's best (dvts)."""
    key = lambda kc: (-_path_score(kc[1], config.aggregate), kc[1].node_id)  # noqa: E731
    if config.method == "dvts":
        kept = []
        for k in sorted({k for k, _ in candidates}):
            kept.append(min((kc for kc in candidates if kc[0] == k), key=key))
    else:
        kept = sorted(candidates, key=key)[: max(0, config.beams - len(b.done))]
    b.live = []
    for k, node in kept:
        (b.done.append(node) if node.closes else b.live.append((k, node)))


def _trace_rows(b: _Beams, config: BeamConfig, ctx: RunContext, now: datetime) -> list[dict]:
    finished = []
    for step in b.done:
        leaf = next((c for c in step.children if c.kind == "answer" and c.text is not None), None)
        if leaf is not None:
            finished.append((_path_score(step, config.aggregate), leaf))
    finished.sort(key=lambda sl: (-sl[0], sl[1].node_id))
    rows = []
    for rank, (score, leaf) in enumerate(finished[: config.traces_per_problem]):
        path = path_to(leaf)
        meta = {
            "fingerprint": ctx.fingerprint,
            "tree_id": b.s.tree_id,
            "path": [n.node_id for n in path],
            "prm_scores": [n.prm_score for n in path if n.kind == "step"],
            "aggregate": config.aggregate,
            "rank": rank,
            "finished_paths": len(finished),
            "gold_source": b.s.gold_source,
            "beams": config.beams,
            "width": config.width,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        rows.append(
            {
                "trace_id": trace_id(b.s.problem_id, config.method, ctx.fingerprint, rank),
                "problem_id": b.s.problem_id,
                "run_id": ctx.run_id,
                "method": config.method,
                "model": ctx.model,
                "thought": STEP_BOUNDARY.join(_steps(leaf)),
                "response": leaf.text,
                "predicted": leaf.answer,
                "n_tokens": sum(n.tokens for n in path),
                "score": score,
                "created_at": now,
                "meta": json.dumps(meta),
                "gold": b.s.gold,
                "gold_source": b.s.gold_source,
                "finish_reason": "stop",
                "think_closed": True,
            }
        )
    return rows


def beam(problems: pl.DataFrame, engine: Engine, config: BeamConfig, ctx: RunContext) -> Generated:
    """Search every problem of the shard (`beam` or `dvts`); return traces and every node.

    >>> from reasonfactory.generators.engines.sim import SimEngine
    >>> from reasonfactory.generators.problems.sources import load_problems
    >>> out = beam(load_problems("builtin:arithmetic", limit=2), SimEngine(error_rate=0.3),
    ...            BeamConfig(scorer={"kind": "equations"}), RunContext("run", "fp", "sim"))
    >>> out.traces.height, bool(out.traces["predicted"].is_not_null().all())
    (2, True)
    """
    searches = [_Beams(_plant(row, config, ctx), config) for row in problems.iter_rows(named=True)]
    scorer = prm_for(config.scorer) if isinstance(config.scorer, PrmConfig) else config.scorer
    search_beams(searches, engine, scorer, config)
    now = datetime.now(UTC)
    traces, nodes = [], []
    for b in searches:
        traces += _trace_rows(b, config, ctx, now)
        nodes += node_rows(b.s, ctx)
    trace_schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    return Generated(
        traces=pl.DataFrame(traces, schema={k: trace_schema[k] for k in TRACE_COLUMNS}),
        nodes=pl.DataFrame(nodes, schema=NODES.polars_schema),
    )
