"""Run statistics: per run and method, problems attempted vs solved, the funnel (generated ->
generation-level rejects -> after each filter -> kept, rejections by reason), engine tokens and
cost, and coverage (pass@k with the unbiased estimator of Chen et al. 2021, maj@k).

A problem counts as attempted when the run stored traces for it or recorded it as done in the
`progress` table (a tree search that found no correct path stores no trace, but its problem was
tried); it is solved when one of its traces was kept. A run that `eval` scored also carries its
`evals` rows (model, benchmark, subset, metric, value, 95% interval, n). Everything is
aggregated in DuckDB. This module reads; it never writes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import yaml
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.judge_stats import judge_agreement
from reasonfactory.warehouse.liveness import effective_status
from reasonfactory.warehouse.store import Warehouse

# Rejects made by the generator itself, before any filter: a failed search (sos), a journey
# with no correct base trace, no correct tree path, or no detour to make.
GENERATION_REASONS = ("no_solution", "no_correct_base", "no_correct_path", "no_detour")

# Methods whose traces per problem are independent samples (pass@k and maj@k mean something).
SAMPLED_METHODS = ("self_output", "distill")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c are correct.

    1 - C(n-c, k) / C(n, k), computed as a product so it never overflows.

    >>> pass_at_k(10, 0, 5), pass_at_k(10, 10, 1), round(pass_at_k(4, 2, 2), 4)
    (0.0, 1.0, 0.8333)
    """
    if k > n:
        raise ValueError(f"k={k} > n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


@dataclass
class RunStats:
    run_id: str
    recipe_name: str
    status: str
    method: str
    generated: int
    kept: int
    rejected: dict[str, int]
    funnel: list[tuple[str, int]]
    pass_at: dict[int, float] = field(default_factory=dict)
    problems: int = 0
    meta: dict = field(default_factory=dict)
    attempted: int = 0
    solved: int = 0
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    maj_at: dict[int, float] = field(default_factory=dict)
    evals: list[dict] = field(default_factory=list)
    # Answer accuracy per problem source and difficulty (reasoning-gym: per family and level)
    accuracy: list[dict] = field(default_factory=list)
    # The answer filter's LLM judge: who decided, and rules/judge agreement (judge_stats.py)
    judge: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain data for `stats --format json` (funnel as a list of {step, traces})."""
        d = asdict(self)
        d["funnel"] = [{"step": s, "traces": n} for s, n in self.funnel]
        d.pop("meta")
        d["refiltered_at"] = (self.meta.get("refilter") or {}).get("at")
        d["pass_at"] = {str(k): v for k, v in self.pass_at.items()}
        d["maj_at"] = {str(k): v for k, v in self.maj_at.items()}
        d["evals"] = [{**e, "created_at": str(e["created_at"])} for e in self.evals]
        return d


def _owners(wh: Warehouse) -> dict[str, str]:
    """runs.owner of running runs ({} for a warehouse older than the column)."""
    if "owner" not in {r[0] for r in wh.con.execute("DESCRIBE runs").fetchall()}:
        return {}
    rows = wh.con.execute("SELECT run_id, owner FROM runs WHERE status = 'running'").fetchall()
    return dict(rows)


def run_stats(wh: Warehouse, run_id: str | None = None) -> list[RunStats]:
    """Per run and method: problems, counts, reasons, funnel, tokens, cost, pass@k, maj@k.

    An unknown `run_id` is a `UserError`.
    """
    if run_id is not None:
        found = wh.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall()
        if not found:
            raise UserError(f"--run {run_id}: no such run in {wh.path}; `stats` lists the runs")
    where = "WHERE r.run_id = ?" if run_id else ""
    runs = wh.con.execute(
        f"SELECT r.run_id, r.recipe_name, r.status, r.recipe, r.meta, m.method "
        f"FROM runs r LEFT JOIN ({_METHODS}) m USING (run_id) {where} "
        "ORDER BY r.started_at, m.method",
        [run_id] if run_id else [],
    ).fetchall()
    out = []
    owners = _owners(wh)
    evals = eval_results(wh, run_id)
    for rid, name, status, recipe, meta, method in runs:
        parsed = (yaml.safe_load(recipe) or {}) if recipe else {}
        s = RunStats(
            run_id=rid,
            recipe_name=name,
            status=effective_status(status, owners.get(rid)),
            method=method or "-",
            generated=0,
            kept=0,
            rejected={},
            funnel=[],
            meta=json.loads(meta) if meta else {},
            evals=[e for e in evals if e["run_id"] == rid],
        )
        if method:
            _fill(wh, s, parsed)
        out.append(s)
    return out


EVAL_COLUMNS = "model, benchmark, subset, metric, k, value, ci_low, ci_high, n, run_id, created_at"


def eval_results(wh: Warehouse, run_id: str | None = None) -> list[dict]:
    """The `evals` rows (of one run, or all), by model, benchmark, subset (`all` first), k.

    A warehouse made before the `evals` table existed has none.
    """
    tables = {r[0] for r in wh.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "evals" not in tables:
        return []
    where = "WHERE run_id = ?" if run_id else ""
    rows = wh.con.execute(
        f"SELECT {EVAL_COLUMNS} FROM evals {where} ORDER BY model, benchmark, "
        "subset <> 'all', subset, k, metric DESC",
        [run_id] if run_id else [],
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


# A run's methods: those of its traces and of its progress records (a run whose problems all
# stored nothing still shows up with its unsolved problems).
_METHODS = (
    "SELECT DISTINCT run_id, method FROM traces UNION SELECT DISTINCT run_id, method FROM progress"
)


def _fill(wh: Warehouse, s: RunStats, recipe: dict) -> None:
    args = [s.run_id, s.method]
    gen = ", ".join(f"'{r}'" for r in GENERATION_REASONS)
    (generated, kept, t_in, t_out, n_tok, gen_ok, gen_failed) = wh.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'kept'), "
        "sum(TRY_CAST(json_extract_string(meta, '$.tokens_in') AS BIGINT)), "
        "sum(TRY_CAST(json_extract_string(meta, '$.tokens_out') AS BIGINT)), sum(n_tokens), "
        f"count(*) FILTER (WHERE {_GEN_OK.format(gen=gen)}), "
        f"count(*) FILTER (WHERE NOT ({_GEN_OK.format(gen=gen)})) "
        "FROM traces WHERE run_id = ? AND method = ?",
        args,
    ).fetchall()[0]
    s.generated, s.kept = generated, kept
    s.rejected = dict(
        wh.con.execute(
            "SELECT reject_reason, count(*) FROM traces WHERE run_id = ? AND method = ? "
            "AND status = 'rejected' GROUP BY 1 ORDER BY 2 DESC, 1",
            args,
        ).fetchall()
    )
    s.attempted, s.solved = wh.con.execute(
        "WITH p AS (SELECT problem_id FROM traces WHERE run_id = ? AND method = ? "
        "UNION SELECT problem_id FROM progress WHERE run_id = ? AND method = ?) "
        "SELECT count(*), count(*) FILTER (WHERE problem_id IN (SELECT problem_id FROM traces "
        "WHERE run_id = ? AND method = ? AND status = 'kept')) FROM p",
        args * 3,
    ).fetchall()[0]
    s.problems = s.attempted
    funnel = _funnel(wh, s, _filter_names(recipe), gen)
    if gen_failed:  # a step of its own only where the generator rejected something
        funnel.insert(0, ("generate", gen_ok))
    s.funnel = funnel
    if t_in is None:  # a search's traces share their requests: the run's progress rows count them
        t_in = _prompt_tokens(wh, s.run_id, s.method)
    s.tokens_in = t_in
    s.tokens_out = t_out if t_out is not None else n_tok
    s.cost = _cost(recipe, s.tokens_in, s.tokens_out)
    if s.method in SAMPLED_METHODS:
        s.pass_at, s.maj_at = _coverage(wh, s.run_id, s.method)
    s.accuracy = accuracy_by_source(wh, s.run_id, s.method)
    s.judge = judge_agreement(wh, s.run_id, s.method)


def accuracy_by_source(wh: Warehouse, run_id: str, method: str) -> list[dict]:
    """Share of checked traces whose answer is right, per problem source and difficulty
    (and curriculum level, for reasoning-gym problems), with the count checked."""
    rows = wh.con.execute(
        "SELECT p.source, p.meta->>'difficulty' AS difficulty, p.meta->>'level' AS level, "
        "count(*) AS checked, avg(t.correct::INT) AS accuracy FROM traces t "
        "JOIN problems p USING (problem_id) WHERE t.run_id = ? AND t.method = ? "
        "AND t.correct IS NOT NULL GROUP BY ALL ORDER BY 1, 3, 2",
        [run_id, method],
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


_GEN_OK = (
    "coalesce(json_extract_string(meta, '$.verdicts.generate'), 'ok') = 'ok' "
    "AND coalesce(reject_reason, '') NOT IN ({gen})"
)


def _filter_names(recipe: dict) -> list[str]:
    items = recipe.get("filters") or []
    return [i if isinstance(i, str) else next(iter(i)) for i in items]


def _funnel(wh: Warehouse, s: RunStats, filters: list[str], gen: str) -> list[tuple[str, int]]:
    """Traces still standing after each filter, in recipe order (generation rejects first)."""
    if not filters:
        return []
    conds, cols = [_GEN_OK.format(gen=gen)], []
    for f in filters:
        conds.append(f"json_extract_string(meta, '$.verdicts.{f}') = 'ok'")
        cols.append(f"count(*) FILTER (WHERE {' AND '.join(conds)})")
    row = wh.con.execute(
        f"SELECT {', '.join(cols)} FROM traces WHERE run_id = ? AND method = ?",
        [s.run_id, s.method],
    ).fetchall()[0]
    return list(zip(filters, row, strict=True))


def _prompt_tokens(wh: Warehouse, run_id: str, method: str) -> int | None:
    """Prompt tokens of every request the engine answered for the run (`progress`), or None
    where the engine reported none (or the warehouse predates the column)."""
    columns = {r[0] for r in wh.con.execute("DESCRIBE progress").fetchall()}
    if "tokens_prompt" not in columns:  # opened read-only, so not migrated
        return None
    (total,) = wh.con.execute(
        "SELECT sum(tokens_prompt) FROM progress WHERE run_id = ? AND method = ?",
        [run_id, method],
    ).fetchall()[0]
    return None if total is None else int(total)


def _cost(recipe: dict, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """Dollars from the recipe's `engine: {price_in, price_out}` (per million tokens)."""
    engine = recipe.get("engine") or {}
    p_in, p_out = engine.get("price_in"), engine.get("price_out")
    if p_in is None and p_out is None:
        return None
    return ((tokens_in or 0) * (p_in or 0) + (tokens_out or 0) * (p_out or 0)) / 1e6


def ks_for(n_min: int) -> list[int]:
    """The k of pass@k / maj@k reported for problems with at least `n_min` samples.

    >>> ks_for(8), ks_for(1), ks_for(6)
    ([1, 2, 4, 8], [1], [1, 2, 4, 6])
    """
    return sorted({1, n_min} | {2**i for i in range(1, 12) if 2**i < n_min})


def _coverage(wh: Warehouse, run_id: str, method: str) -> tuple[dict, dict]:
    """pass@k over every attempted problem with checked samples, and maj@k (the most common
    answer of the first k samples, by trace id, is right; ties are broken arbitrarily)."""
    groups = wh.con.execute(
        "SELECT n, c, count(*) FROM (SELECT count(*) AS n, count(*) FILTER (WHERE correct) AS c "
        "FROM traces WHERE run_id = ? AND method = ? GROUP BY problem_id "
        "HAVING count(correct) > 0) GROUP BY ALL",
        [run_id, method],
    ).fetchall()
    if not groups:
        return {}, {}
    total = sum(m for _, _, m in groups)
    ks = ks_for(min(n for n, _, _ in groups))
    pass_at = {k: sum(m * pass_at_k(n, c, k) for n, c, m in groups) / total for k in ks}
    maj_at = {}
    for k in (k for k in ks if k > 1):  # maj@1 is one sample's accuracy: pass@1 says it
        (share,) = wh.con.execute(
            "WITH s AS (SELECT problem_id, predicted, correct, row_number() OVER "
            "(PARTITION BY problem_id ORDER BY trace_id) AS i FROM traces "
            "WHERE run_id = ? AND method = ? AND problem_id IN (SELECT problem_id FROM traces "
            "WHERE run_id = ? AND method = ? GROUP BY 1 HAVING count(correct) > 0)), "
            "v AS (SELECT problem_id, predicted, count(*) AS votes, bool_or(correct) AS ok "
            "FROM s WHERE i <= ? AND predicted IS NOT NULL GROUP BY ALL), "
            "w AS (SELECT problem_id, arg_max(ok, votes) AS ok FROM v GROUP BY 1) "
            "SELECT count(*) FILTER (WHERE ok) FROM w",
            [run_id, method, run_id, method, k],
        ).fetchall()[0]
        maj_at[k] = share / total
    return pass_at, maj_at
