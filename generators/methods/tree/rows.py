"""Rows for the warehouse from a finished search: ranked correct paths as traces, every
node for the `nodes` table."""

from __future__ import annotations

import json
from datetime import datetime

from reasonfactory.generators.base import WORKING_COLUMNS, RunContext
from reasonfactory.generators.methods.tree.config import TreeConfig
from reasonfactory.generators.methods.tree.mcts import (
    Node,
    iter_nodes,
    path_to,
)
from reasonfactory.generators.methods.tree.search import Search, pending_answer
from reasonfactory.generators.prompts import STEP_BOUNDARY
from reasonfactory.warehouse.ids import trace_id

TRACE_COLUMNS = [
    "trace_id",
    "problem_id",
    "run_id",
    "method",
    "model",
    "thought",
    "response",
    "predicted",
    "n_tokens",
    "score",
    "created_at",
    "meta",
    *WORKING_COLUMNS,
]


def unverified(node: Node) -> bool:
    """A step the `equations` verifier found nothing checkable in."""
    return any(c.get("kind") == "equations" and c.get("ok") is None for c in node.checks)


def own_verdict(node: Node) -> bool | None:
    """The step's own check (`equations`, `code`): False if one failed, True if one passed
    and none failed, None when none judged it (no such verifier, or nothing checkable).
    PRM labels read it first (warehouse/tree_views.py)."""
    verdicts = [c.get("ok") for c in node.checks if c.get("kind") in ("equations", "code")]
    if False in verdicts:
        return False
    return True if True in verdicts else None


def ranked_paths(s: Search) -> list[tuple[float, float, list[Node]]]:
    """Correct root-to-answer paths as (mean Q, min Q, nodes), best first."""
    ranked = []
    for leaf in iter_nodes(s.root):
        if leaf.kind != "answer" or leaf.correct is not True:
            continue
        path = path_to(leaf)
        if any(n.check is not None and n.check["ok"] is False for n in path):
            continue  # cannot happen (a failed step is terminal); never let one through
        qs = [n.q for n in path]
        ranked.append((sum(qs) / len(qs), min(qs), path))
    ranked.sort(key=lambda r: (-r[0], -r[1], [n.node_id for n in r[2]]))
    return ranked


def trace_rows(s: Search, config: TreeConfig, ctx: RunContext, now: datetime) -> list[dict]:
    rows = []
    ranked = ranked_paths(s)
    for rank, (mean_q, min_q, path) in enumerate(ranked[: config.traces_per_problem]):
        leaf = path[-1]
        meta = {
            "fingerprint": ctx.fingerprint,
            "tree_id": s.tree_id,
            "path": [n.node_id for n in path],
            "q_values": [round(n.q, 6) for n in path],
            "mean_q": mean_q,
            "min_q": min_q,
            "rank": rank,
            "correct_paths": len(ranked),
            "gold_source": s.gold_source,
            "finish_reason": "stop",
            "think_closed": True,
            "verify": list(config.verify),
            "unverified_steps": sum(unverified(n) for n in path),
            "rollouts": config.rollouts,
            "width": config.width,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        rows.append(
            {
                "trace_id": trace_id(s.problem_id, "tree", ctx.fingerprint, rank),
                "problem_id": s.problem_id,
                "run_id": ctx.run_id,
                "method": "tree",
                "model": ctx.model,
                "thought": STEP_BOUNDARY.join(n.text for n in path if n.kind == "step"),
                "response": leaf.text,
                "predicted": leaf.answer,
                "n_tokens": sum(n.tokens for n in path),
                "score": mean_q,
                "created_at": now,
                "meta": json.dumps(meta),
                "gold": s.gold,
                "gold_source": s.gold_source,
                "finish_reason": "stop",
                "think_closed": True,
            }
        )
    return rows


def node_rows(s: Search, ctx: RunContext) -> list[dict]:
    rows = []
    for node in iter_nodes(s.root):
        if pending_answer(node):
            continue  # the engine never wrote it: there is no text to store
        meta = {
            "kind": node.kind,
            "answer": node.answer,
            "check": node.check,
            "reward": node.reward,
            "samples": node.samples,
            "closes": node.closes,
            "reason": node.reason,
            "tokens": node.tokens,
            "verified": own_verdict(node),
        }
        if len(node.checks) > 1:
            meta["checks"] = node.checks
        if node.rollout_answers is not None:
            meta["rollout_answers"] = node.rollout_answers
        if node.prm_score is not None:
            meta["prm_score"] = node.prm_score
        rows.append(
            {
                "tree_id": s.tree_id,
                "node_id": node.node_id,
                "parent_id": node.parent.node_id if node.parent else None,
                "problem_id": s.problem_id,
                "run_id": ctx.run_id,
                "depth": node.depth,
                "text": node.text,
                "is_terminal": node.terminal,
                "correct": node.correct,
                "visits": node.visits,
                "q_value": node.q,
                "mc_value": node.mc_value,
                "meta": json.dumps(meta),
            }
        )
    return rows
