"""Run statistics: the funnel (generated -> after each filter -> kept, rejections by reason)
and coverage (pass@k with the unbiased estimator of Chen et al. 2021).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml
from reasonfactory.warehouse.liveness import effective_status
from reasonfactory.warehouse.store import Warehouse


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


def _owners(wh: Warehouse) -> dict[str, str]:
    """runs.owner of running runs ({} for a warehouse older than the column)."""
    if "owner" not in {r[0] for r in wh.con.execute("DESCRIBE runs").fetchall()}:
        return {}
    rows = wh.con.execute("SELECT run_id, owner FROM runs WHERE status = 'running'").fetchall()
    return dict(rows)


def run_stats(wh: Warehouse, run_id: str | None = None) -> list[RunStats]:
    """Per run and method: counts, reasons, funnel, pass@k."""
    where = "WHERE r.run_id = ?" if run_id else ""
    runs = wh.con.execute(
        f"SELECT r.run_id, r.recipe_name, r.status, r.recipe, r.meta, t.method, count(t.trace_id),"
        " count(t.trace_id) FILTER (WHERE t.status = 'kept') "
        f"FROM runs r LEFT JOIN traces t USING (run_id) {where} "
        "GROUP BY ALL ORDER BY min(r.started_at), t.method",
        [run_id] if run_id else [],
    ).fetchall()
    out = []
    owners = _owners(wh)
    for rid, name, status, recipe, meta, method, generated, kept in runs:
        filters = _filter_names(recipe)
        out.append(
            RunStats(
                run_id=rid,
                recipe_name=name,
                status=effective_status(status, owners.get(rid)),
                method=method or "-",
                generated=generated,
                kept=kept,
                rejected=_reasons(wh, rid, method),
                funnel=_funnel(wh, rid, method, filters) if method else [],
                pass_at=_coverage(wh, rid, method) if method else {},
                problems=_count_problems(wh, rid, method) if method else 0,
                meta=json.loads(meta) if meta else {},
            )
        )
    return out


def _filter_names(recipe: str | None) -> list[str]:
    if not recipe:
        return []
    items = (yaml.safe_load(recipe) or {}).get("filters") or []
    return [i if isinstance(i, str) else next(iter(i)) for i in items]


def _reasons(wh: Warehouse, run_id: str, method: str | None) -> dict[str, int]:
    rows = wh.con.execute(
        "SELECT reject_reason, count(*) FROM traces WHERE run_id = ? AND method = ? "
        "AND status = 'rejected' GROUP BY 1 ORDER BY 2 DESC",
        [run_id, method],
    ).fetchall()
    return {r: n for r, n in rows}


def _funnel(wh: Warehouse, run_id: str, method: str, filters: list[str]) -> list[tuple[str, int]]:
    """Traces still standing after each filter, in recipe order."""
    if not filters:
        return []
    conds, cols = [], []
    for f in filters:
        conds.append(f"json_extract_string(meta, '$.verdicts.{f}') = 'ok'")
        cols.append(f"count(*) FILTER (WHERE {' AND '.join(conds)})")
    row = wh.con.execute(
        f"SELECT {', '.join(cols)} FROM traces WHERE run_id = ? AND method = ?", [run_id, method]
    ).fetchall()[0]
    return list(zip(filters, row, strict=True))


def _coverage(wh: Warehouse, run_id: str, method: str) -> dict[int, float]:
    per_problem = wh.con.execute(
        "SELECT count(*) AS n, count(*) FILTER (WHERE correct) AS c FROM traces "
        "WHERE run_id = ? AND method = ? GROUP BY problem_id HAVING count(correct) > 0",
        [run_id, method],
    ).fetchall()
    if not per_problem:
        return {}
    n_min = min(n for n, _ in per_problem)
    ks = sorted({1, n_min} | {2**i for i in range(1, 12) if 2**i < n_min})
    return {k: sum(pass_at_k(n, c, k) for n, c in per_problem) / len(per_problem) for k in ks}


def _count_problems(wh: Warehouse, run_id: str, method: str) -> int:
    return wh.con.execute(
        "SELECT count(DISTINCT problem_id) FROM traces WHERE run_id = ? AND method = ?",
        [run_id, method],
    ).fetchall()[0][0]
