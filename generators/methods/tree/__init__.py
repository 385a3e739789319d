"""`tree`: rStar-Math-style MCTS over reasoning steps, process-verified, batched across trees.

One search tree per problem (`mcts.py` holds the pure search). A node is one step
paragraph of the step protocol (`generators/prompts.py`); expanding a node asks the engine for
`width` candidate next steps in one request (`n = width`, `prefix` = the steps so far,
stop at the blank line that ends a step). Identical candidates are one child (`samples`
counts them). A step that closes the thought (`</think>` follows it) gets one child, the
answer paragraph, written by a later request; that answer node is terminal with reward +1
if its boxed answer matches the gold (math-verify), else -1. Without a gold answer the
running majority of the tree's answers stands in, and at the end every answer is re-scored
against the final majority (if its share reaches `min_agreement`) and all Q values are
rebuilt from the re-scored rewards.

Each new step is verified before it can be expanded (`verify`, any of, run in this order):
- `equations`: its arithmetic claims recomputed exactly (`verify/steps.py`);
- `code`: its Python, after its ancestors' code, run in the sandbox (`verify/sandbox.py`);
  an error, a timeout, a limit or a printed value that contradicts the step fails it;
- `rollout`: Math-Shepherd: `rollout_samples` completions from it; `mc_value` = share that
  reach the right answer; none (`mc_value == 0`) fails it.
A failed step is terminal with `correct = false` and reward -1 on itself only (as rStar
scores invalid nodes), like a step past `max_depth` or one cut off by `max_step_tokens`;
answer rewards are backed up to the root. So a step's Q is the mean outcome of the answers
reached through it, and its children's slips do not lower it.

Batching, in synchronous rounds: every round, each tree advances its current rollout (UCT
descent from the root; rollout `k` starts when rollout `k-1` reached a terminal, a dead end
or `max_depth`) to the one node it needs the engine for, and the nodes of all trees go to
the engine in ONE `generate` call (plus one call for the `rollout` verifier's completions).
No tree waits on another's engine call and no request is ever sent alone; a round's calls
hold as many requests as there are unfinished trees in the shard. After the last round,
one more call writes the answer paragraph of every closed thought still without one.

Traces: per problem, the `traces_per_problem` correct root-to-answer paths ranked by
(mean Q, min Q) over their nodes, in the R1 format (`thought` = the steps joined by blank
lines, `response` = the answer paragraph), `score` = mean Q. A path through a failed step
cannot reach an answer. Every node of every tree is returned for the `nodes` table.

Same config, seed and problems: same trees, same traces (the tree's tie-breaking RNG and
every request's seed derive from the seed, the problem and the node's tag, not from the
batch or the shard).

Here: the entry point `tree`; config.py the settings; search.py the search loop and step
verification; rows.py the traces and nodes for the warehouse. Not here: filtering and
storing (flows/generate.py does both).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from reasonfactory.generators.base import WORKING_COLUMNS, Generated, RunContext
from reasonfactory.generators.engines.base import Engine
from reasonfactory.generators.methods.tree.config import VERIFIERS, TreeConfig
from reasonfactory.generators.methods.tree.rows import TRACE_COLUMNS, node_rows, trace_rows
from reasonfactory.generators.methods.tree.search import (
    Search,
    plant,
    search_trees,
    settle_majority,
    split_step,
)
from reasonfactory.warehouse.schema import NODES, TRACES


def tree(problems: pl.DataFrame, engine: Engine, config: TreeConfig, ctx: RunContext) -> Generated:
    """Search a tree per problem, all trees batched together; return traces and every node.

    >>> from reasonfactory.generators.engines.sim import SimEngine
    >>> from reasonfactory.generators.problems.sources import load_problems
    >>> out = tree(load_problems("builtin:arithmetic", limit=2), SimEngine(error_rate=0.2),
    ...            TreeConfig(rollouts=4), RunContext("run", "fp", "sim"))
    >>> out.nodes["tree_id"].n_unique(), bool(out.traces["predicted"].is_not_null().all())
    (2, True)
    """
    searches = [plant(row, config, ctx) for row in problems.iter_rows(named=True)]
    search_trees(searches, engine, config)
    now = datetime.now(UTC)
    traces, nodes = [], []
    for s in searches:
        settle_majority(s, config)
        traces += trace_rows(s, config, ctx, now)
        nodes += node_rows(s, ctx)
    trace_schema = {**TRACES.polars_schema, **WORKING_COLUMNS}
    return Generated(
        traces=pl.DataFrame(traces, schema={k: trace_schema[k] for k in TRACE_COLUMNS}),
        nodes=pl.DataFrame(nodes, schema=NODES.polars_schema),
    )


__all__ = ["VERIFIERS", "Search", "TreeConfig", "plant", "search_trees", "split_step", "tree"]
