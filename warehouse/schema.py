"""The one definition of every warehouse table and column.

Every stage builds its records against these definitions: generators produce frames with
these columns, ingest selects exactly them, the DDL is derived from them. Add columns,
never rename them (users' SQL and exports rely on the names).

This module holds no I/O; `reasonfactory.warehouse.store` does the connecting and ingesting.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from reasonfactory.warehouse.tree_views import DPO_VIEW, PRM_VIEW


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    dtype: pl.DataType
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    doc: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c.name} {c.sql_type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Select this table's columns in order, cast to their types; missing ones become null.

        >>> PROBLEMS.conform(pl.DataFrame({"problem_id": ["p1"], "question": ["1+1?"]})).columns[:3]
        ['problem_id', 'source', 'question']
        """
        exprs = []
        for c in self.columns:
            if c.name in frame.columns:
                exprs.append(pl.col(c.name).cast(c.dtype))
            else:
                exprs.append(pl.lit(None, dtype=c.dtype).alias(c.name))
        return frame.select(exprs)


_S, _I, _F, _B = pl.String(), pl.Int64(), pl.Float64(), pl.Boolean()
_TS = pl.Datetime("us", "UTC")

PROBLEMS = Table(
    name="problems",
    key=("problem_id",),
    doc="One row per problem: built-in, imported from a file, or a dataset.",
    columns=(
        Column("problem_id", "VARCHAR", _S, "hash of source + normalised question"),
        Column("source", "VARCHAR", _S, "builtin:arithmetic, a file stem, or --source NAME"),
        Column("question", "VARCHAR", _S, "the problem statement shown to the model"),
        Column("gold", "VARCHAR", _S, "gold final answer (bare), null when unknown"),
        Column("meta", "JSON", _S, "family, difficulty, original fields of the record"),
    ),
)

RUNS = Table(
    name="runs",
    key=("run_id",),
    doc="One row per run: a recipe's content identity. Re-running the same recipe resumes it.",
    columns=(
        Column("run_id", "VARCHAR", _S, "hash of recipe name, generation fingerprint, problem set"),
        Column("recipe_name", "VARCHAR", _S, "the recipe's name"),
        Column("recipe", "VARCHAR", _S, "the validated recipe as YAML (last invocation)"),
        Column("fingerprint", "VARCHAR", _S, "hash of everything that changes generated text"),
        Column("started_at", "TIMESTAMPTZ", _TS, "first start"),
        Column("finished_at", "TIMESTAMPTZ", _TS, "end of the last invocation"),
        Column("status", "VARCHAR", _S, "running | completed | failed | interrupted"),
        Column("meta", "JSON", _S, "timings and counts of the last invocation"),
        Column("owner", "VARCHAR", _S, "host:pid:start of the process running it (crashed?)"),
        Column("kind", "VARCHAR", _S, "data | eval (an eval's traces are benchmark answers)"),
        Column("flow_run", "VARCHAR", _S, "the Prefect flow run of the last invocation"),
    ),
)

TRACES = Table(
    name="traces",
    key=("trace_id",),
    doc="Every generated trace, kept or rejected (with its reason).",
    columns=(
        Column("trace_id", "VARCHAR", _S, "hash of problem_id, method, fingerprint, sample index"),
        Column("problem_id", "VARCHAR", _S, "problems.problem_id"),
        Column("run_id", "VARCHAR", _S, "runs.run_id of the run that made it"),
        Column("method", "VARCHAR", _S, "self_output | tree | journey | sos | distill"),
        Column("model", "VARCHAR", _S, "engine model name"),
        Column("thought", "VARCHAR", _S, "text inside <think>...</think>"),
        Column("response", "VARCHAR", _S, "text after </think>"),
        Column("predicted", "VARCHAR", _S, "extracted final answer (last \\boxed{})"),
        Column("correct", "BOOLEAN", _B, "answer check verdict; null when not checkable"),
        Column(
            "n_tokens",
            "BIGINT",
            _I,
            "completion tokens as the engine counted them; sos and journey traces (text no "
            "engine sampled whole) approximate: UTF-8 bytes / 4 (approx:utf8_bytes/4)",
        ),
        Column("lang", "VARCHAR", _S, "language of the trace"),
        Column("status", "VARCHAR", _S, "kept | rejected"),
        Column("reject_reason", "VARCHAR", _S, "first filter rule the trace failed"),
        Column("score", "DOUBLE", _F, "the method's own quality score (vote share, path Q...)"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when it was generated"),
        Column("meta", "JSON", _S, "sampling details, votes, every filter's verdict"),
    ),
)

NODES = Table(
    name="nodes",
    key=("tree_id", "node_id"),
    doc="Every step of every search tree.",
    columns=(
        Column("tree_id", "VARCHAR", _S, "one tree per problem per run"),
        Column("node_id", "VARCHAR", _S, "the node's tag within its tree"),
        Column("parent_id", "VARCHAR", _S, "parent node_id, null for the root"),
        Column("problem_id", "VARCHAR", _S, "problems.problem_id"),
        Column("run_id", "VARCHAR", _S, "runs.run_id"),
        Column("depth", "INTEGER", pl.Int32(), "0 for the root"),
        Column("text", "VARCHAR", _S, "the step's text"),
        Column("is_terminal", "BOOLEAN", _B, "final answer, failed check or max depth"),
        Column("correct", "BOOLEAN", _B, "terminal answer checked against the gold"),
        Column("visits", "BIGINT", _I, "MCTS visit count N"),
        Column("q_value", "DOUBLE", _F, "mean backed-up reward"),
        Column("mc_value", "DOUBLE", _F, "share of rollouts from here reaching the gold"),
        Column("meta", "JSON", _S, "verification detail (failed claim, code output), answer"),
    ),
)

PROGRESS = Table(
    name="progress",
    key=("fingerprint", "method", "problem_id"),
    doc="Resume ledger: a problem is done for a fingerprint once its output is stored "
    "(written in the same transaction as its traces).",
    columns=(
        Column("fingerprint", "VARCHAR", _S, "runs.fingerprint"),
        Column("method", "VARCHAR", _S, "generation method"),
        Column("problem_id", "VARCHAR", _S, "problems.problem_id"),
        Column("run_id", "VARCHAR", _S, "the run that did the work"),
        Column("n_traces", "BIGINT", _I, "traces stored for it (kept or rejected)"),
        Column("finished_at", "TIMESTAMPTZ", _TS, "when it was stored"),
        Column("max_tokens", "BIGINT", _I, "the generation max_tokens it was done with"),
        Column("n_truncated", "BIGINT", _I, "its traces cut off at max_tokens (redone if raised)"),
        Column("n_failed", "BIGINT", _I, "its samples the engine failed on (redone next run)"),
        Column("tokens_generated", "BIGINT", _I, "completion tokens the engine generated for it"),
        Column("tokens_reused", "BIGINT", _I, "completion tokens served from `completions`"),
        Column(
            "tokens_prompt",
            "BIGINT",
            _I,
            "prompt tokens of what the engine answered (null: none reported)",
        ),
    ),
)

COMPLETIONS = Table(
    name="completions",
    key=("request_key",),
    doc="Every completion an engine returned, keyed by its content (generators/resume.py): a "
    "re-run reuses these instead of asking the engine again.",
    columns=(
        Column("request_key", "VARCHAR", _S, "hash of engine, request, sampling, sample no."),
        Column("engine", "VARCHAR", _S, "hash of the engine settings that change its output"),
        Column("model", "VARCHAR", _S, "engine model name"),
        Column("text", "VARCHAR", _S, "the completion as returned (answer part when split)"),
        Column("reasoning", "VARCHAR", _S, "thinking the server returned separately, else null"),
        Column("finish_reason", "VARCHAR", _S, "stop | length"),
        Column("stop_reason", "VARCHAR", _S, "the stop string that ended it, if any"),
        Column("n_tokens", "BIGINT", _I, "completion tokens"),
        Column("cumulative_logprob", "DOUBLE", _F, "sum of sampled-token logprobs, if asked"),
        Column("max_tokens", "BIGINT", _I, "the budget it was generated under"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when it was generated"),
        Column("meta", "JSON", _S, "token usage (tokens_in, tokens_out), latency, server details"),
    ),
)

EVALS = Table(
    name="evals",
    key=("run_id", "metric", "k", "subset"),
    doc="Benchmark results of a model (`reasonfactory eval`): one row per metric, k and subset.",
    columns=(
        Column("model", "VARCHAR", _S, "the engine's model (a folder or a name)"),
        Column("benchmark", "VARCHAR", _S, "the problem set evaluated on"),
        Column("metric", "VARCHAR", _S, "pass@1 (mean over samples) | pass@k | maj@k"),
        Column("k", "BIGINT", _I, "samples the metric looks at"),
        Column("value", "DOUBLE", _F, "the estimate, in [0, 1]"),
        Column("ci_low", "DOUBLE", _F, "95% interval, low end (Wilson for 0/1 outcomes)"),
        Column("ci_high", "DOUBLE", _F, "95% interval, high end"),
        Column("n", "BIGINT", _I, "problems it is computed over"),
        Column("run_id", "VARCHAR", _S, "runs.run_id of the generation run it reads"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when it was computed"),
        Column("subset", "VARCHAR", _S, "all | source=NAME | difficulty=D"),
    ),
)

MODELS = Table(
    name="models",
    key=("model_id",),
    doc="Models trained on exports (`reasonfactory train`, the loop): their lineage; and models "
    "pulled from a package registry (`models pull`, kind `pulled`): their provenance.",
    columns=(
        Column("model_id", "VARCHAR", _S, "hash of parent, data, kind and settings"),
        Column("path", "VARCHAR", _S, "the saved model folder"),
        Column("parent", "VARCHAR", _S, "the base model folder (or models.model_id) trained from"),
        Column("kind", "VARCHAR", _S, "sft | dpo | prm | scratch | pulled"),
        Column("data", "JSON", _S, "training data: export folder, run ids and row counts"),
        Column("recipe", "JSON", _S, "the training settings"),
        Column("metrics", "JSON", _S, "train loss, steps, seconds"),
        Column("created_at", "TIMESTAMPTZ", _TS, "when it was saved"),
        Column(
            "provenance",
            "JSON",
            _S,
            "a pulled model (`models pull`): package, version, licence, file sha256 digests",
        ),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (PROBLEMS, RUNS, TRACES, NODES, PROGRESS, COMPLETIONS, EVALS, MODELS)
}

# The views export reads: `sft_all` every trace with its chat, `sft` the kept ones (what
# `export sft` writes by default). Thought steps may carry <step> tags; SFT never sees them.
SFT_ALL_VIEW = r"""
CREATE OR REPLACE VIEW sft_all AS
SELECT
  t.*,
  p.question,
  p.gold,
  p.source,
  list_concat(
    -- the chat the model was asked (`meta.prompt`, self_output), else the bare question
    coalesce(
      from_json(t.meta->'prompt', '[{"role": "VARCHAR", "content": "VARCHAR"}]'),
      [{'role': 'user', 'content': p.question}]
    ),
    [{'role': 'assistant', 'content':
       '<think>' || chr(10) || trim(regexp_replace(t.thought, '</?step>', '', 'g')) || chr(10)
       || '</think>' || chr(10) || chr(10) || trim(t.response)}]
  ) AS messages
FROM traces t JOIN problems p USING (problem_id)
"""
SFT_VIEW = "CREATE OR REPLACE VIEW sft AS SELECT * FROM sft_all WHERE status = 'kept'"
VIEW_COMMENTS = {
    "sft_all": "every trace (kept and rejected) joined with its problem, with `messages`",
    "sft": "kept traces only, joined with their problem, with `messages`: what export sft writes",
    "prm": "one row per root-to-leaf path of every search tree, with step labels",
    "dpo": "sibling step pairs of search trees as chosen/rejected preference rows",
}

VIEWS = (SFT_ALL_VIEW, SFT_VIEW)
VIEWS = (*VIEWS, PRM_VIEW, DPO_VIEW)  # search trees as PRM rows and DPO pairs (tree_views.py)
# Each view says what it holds (`SELECT view_name, comment FROM duckdb_views()`).
VIEWS = (*VIEWS, *(f"COMMENT ON VIEW {v} IS '{c}'" for v, c in VIEW_COMMENTS.items()))
