"""The HTML report of a warehouse: plots, a trace browser and a tree viewer in one static file,
with the per-run table and the `evals` table (model, benchmark, metric, value, 95% interval, n).

Everything is aggregated in DuckDB (counts, histogram bins, shares), so the page's size and
the time to make it do not grow with the number of traces; the browser and the tree viewer get
a deterministic sample (by hash of the id) of at most `sample` traces per method and status and
`trees` trees, and the page says so. The plotting library is plotly, its JavaScript inlined:
the file works offline, with no CDN. The page's own script is `report_page.js`.

This module reads the warehouse; it never writes to it.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path

import yaml
from reasonfactory.warehouse.stats import SAMPLED_METHODS, eval_results, run_stats
from reasonfactory.warehouse.store import Warehouse

THOUGHT_CHARS = 12_000  # a trace's text in the browser is cut here (the page says so)
NO_LANG = "not detected"  # the language plot's label for traces.lang IS NULL


def build_report(
    wh: Warehouse, run_id: str | None = None, sample: int = 200, trees: int = 12
) -> dict:
    """The report's data: plot figures (plotly JSON), sampled traces and trees, counts."""
    scope, args = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    wh.con.execute("SET enable_progress_bar = false")  # the CLI shows its own spinner
    # Aggregates and the sample stream or spill: memory stays flat as the warehouse grows.
    wh.con.execute("SET memory_limit = '1GB'")
    stats = run_stats(wh, run_id)
    evals = _eval_runs(wh, scope, args)
    total = _rows(wh, f"SELECT count(*) FROM traces {scope}", args)[0][0]
    figures = {
        "funnel": _funnel_figure([s for s in stats if s.run_id not in evals]),
        "lengths": _length_figure(wh, scope, args),
        "accuracy": _accuracy_figure(wh, scope, args),
        "passk": _passk_figure(stats),
        "language": _language_figure(wh, scope, args),
        "reasons": _reasons_figure(wh, scope, args),
        "trees": _tree_figure(wh, scope, args),
    }
    traces = _sample_traces(wh, scope, args, sample)
    return {
        "run": run_id,
        "warehouse": str(wh.path),
        "total_traces": total,
        "sampled_traces": len(traces),
        "sample_per_group": sample,
        "thought_chars": THOUGHT_CHARS,
        "stats": [{**s.to_dict(), "kind": "eval" if s.run_id in evals else "data"} for s in stats],
        "evals": eval_results(wh, run_id),
        "figures": figures,
        "traces": traces,
        "trees": _sample_trees(wh, scope, args, trees),
    }


def write_report(data: dict, out: str | Path) -> Path:
    """Write the report as one self-contained HTML file (plotly's JS inlined)."""
    from plotly.offline import get_plotlyjs

    page = resources.files("reasonfactory.warehouse")
    template = page.joinpath("report_page.html").read_text(encoding="utf-8")
    values = {
        "title": html.escape(f"reasonfactory report: {data['run'] or 'all runs'}"),
        "plotly": get_plotlyjs(),
        "data": script_json(data),
        "script": page.joinpath("report_page.js").read_text(encoding="utf-8"),
    }
    # One pass over the template: a value is never searched for placeholders, so a trace
    # holding `{{script}}` stays text.
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# Inside <script>, `<!--`, `<script` and `</script` change how HTML reads on; U+2028/2029 end
# a line in older JavaScript; a lone surrogate is not UTF-8. None of them is JSON syntax, so
# each is written as a \u escape inside its string: the same value once parsed.
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def script_json(data) -> str:
    r"""`data` as JSON safe to embed in a `<script>` element.

    >>> script_json({"t": "<!--<script></script>&", "l": "\u2028"})
    '{"t": "\\u003c!--\\u003cscript\\u003e\\u003c/script\\u003e\\u0026", "l": "\\u2028"}'
    >>> json.loads(script_json(["\ud800"])) == ["\ud800"]
    True
    """
    text = json.dumps(data, ensure_ascii=False, default=str)
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _eval_runs(wh: Warehouse, scope: str, args: list) -> set[str]:
    """Runs whose recipe says `kind: eval`: their traces are benchmark answers (status
    `eval`), never kept or rejected, so solved and kept would read 0 as if they had failed."""
    recipes = _rows(wh, f"SELECT run_id, recipe FROM runs {scope}", args)
    return {
        rid for rid, text in recipes if (yaml.safe_load(text or "") or {}).get("kind") == "eval"
    }


def _rows(wh: Warehouse, query: str, args: list) -> list[tuple]:
    return wh.con.execute(query, args).fetchall()


def _series(rows) -> dict:
    """Rows of (series key, x, y) as {key: (xs, ys)}, in row order."""
    out: dict = {}
    for key, x, y in rows:
        xs, ys = out.setdefault(key, ([], []))
        xs.append(x)
        ys.append(y)
    return out


def _layout(title: str, **more) -> dict:
    # The title sits on the plot area, under the top margin where plotly's mode bar shows on
    # hover (centred in a 40 px margin, the bar covered it). Axes grow their margins to fit
    # their tick labels (long, rotated source names were cut at a fixed 60 px).
    layout = {
        "title": {"text": title, "y": 1, "yref": "paper", "yanchor": "bottom", "pad": {"b": 8}},
        "margin": {"t": 64, "l": 60, "r": 20, "b": 60},
        "xaxis": {},
        "yaxis": {},
        **more,
    }
    for key in [k for k in layout if k[:5] in ("xaxis", "yaxis")]:
        layout[key] = {**layout[key], "automargin": True}
    return layout


def _funnel_figure(stats) -> dict:
    """Share of generated traces still standing after each step, one line per run and
    method (methods of very different sizes stay comparable; the hover gives counts)."""
    data = []
    for s in stats:
        if s.method == "-" or not s.generated:
            continue
        steps = [("generated", s.generated), *s.funnel, ("kept", s.kept)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{s.method} ({s.run_id[:8]})",
                "x": [name for name, _ in steps],
                "y": [n / s.generated for _, n in steps],
                "text": [f"{n} traces" for _, n in steps],
            }
        )
    # one axis for every method: generated, the generator's own rejects, filters in order
    order = ["generated", "generate"]
    for trace in data:
        order += [step for step in trace["x"] if step not in order and step != "kept"]
    layout = _layout(
        "Funnel per method: share of generated traces standing after each step",
        xaxis={"categoryorder": "array", "categoryarray": [*order, "kept"]},
        yaxis={"title": {"text": "share of generated"}, "range": [0, 1.05]},
    )
    return {"data": data, "layout": layout}


def _length_figure(wh: Warehouse, scope: str, args: list) -> dict:
    """Thought length (characters) per method and status, in DuckDB: ten bins per power of
    ten, so a method of 100-character traces and one of 10,000 both show their shape."""
    rows = _rows(
        wh,
        "SELECT method, status, round(pow(10, floor(log10(length(thought) + 1) * 10) / 10)) "
        f"AS bin, count(*) FROM traces {scope} GROUP BY ALL ORDER BY 1, 2, 3",
        args,
    )
    series = _series(((m, st), b, n) for m, st, b, n in rows)
    data = [
        {"type": "scatter", "mode": "lines+markers", "line": {"shape": "hvh"},
         "name": f"{m} {st}", "x": xs, "y": ys}
        for (m, st), (xs, ys) in series.items()
    ]  # fmt: skip
    layout = _layout(
        "Thought length per method and status",
        xaxis={"title": {"text": "characters (log scale, 10 bins per decade)"}, "type": "log"},
        yaxis={"title": {"text": "traces"}},
    )
    return {"data": data, "layout": layout}


def _accuracy_figure(wh: Warehouse, scope: str, args: list) -> dict:
    rows = _rows(
        wh,
        "SELECT t.method, p.source || coalesce(' d' || json_extract_string(p.meta, "
        "'$.difficulty'), '') AS grp, avg(t.correct::INT), count(t.correct) "
        f"FROM (SELECT * FROM traces {scope}) t JOIN problems p USING (problem_id) "
        "WHERE t.correct IS NOT NULL GROUP BY ALL ORDER BY 2, 1",
        args,
    )
    by_method: dict[str, tuple[list, list, list]] = {}
    for method, grp, acc, n in rows:
        xs, ys, ns = by_method.setdefault(method, ([], [], []))
        xs.append(grp)
        ys.append(acc)
        ns.append(f"{n} checked")
    data = [
        {"type": "bar", "name": m, "x": xs, "y": ys, "text": ns}
        for m, (xs, ys, ns) in by_method.items()
    ]
    layout = _layout(
        "Answer accuracy by source and difficulty (traces with a checked answer)",
        barmode="group",
        yaxis={"title": {"text": "share correct"}, "range": [0, 1]},
    )
    return {"data": data, "layout": layout}


def _passk_figure(stats) -> dict:
    data = [
        {"type": "scatter", "mode": "lines+markers", "line": {"dash": dash},
         "name": f"{name} {s.method} ({s.run_id[:8]})", "x": list(at), "y": list(at.values())}
        for s in stats
        for name, at, dash in (("pass@k", s.pass_at, "solid"), ("maj@k", s.maj_at, "dot"))
        if at
    ]  # fmt: skip
    layout = _layout(
        f"pass@k and maj@k (methods with independent samples: {', '.join(SAMPLED_METHODS)})",
        xaxis={"title": {"text": "k"}},
        yaxis={"title": {"text": "share of problems"}, "range": [0, 1.02]},
    )
    return {"data": data, "layout": layout}


def _language_figure(wh: Warehouse, scope: str, args: list) -> dict:
    # Languages on the x axis, a bar per method, the legend always on: with one series
    # (traces of one language, or none stored) plotly hid the legend, the only place the
    # language was named.
    rows = _rows(
        wh,
        f"SELECT method, coalesce(lang, '{NO_LANG}'), count(*) FROM traces {scope} "
        "GROUP BY ALL ORDER BY 1, 2",
        args,
    )
    data = [
        {"type": "bar", "name": method, "x": xs, "y": ys}
        for method, (xs, ys) in _series(rows).items()
    ]
    layout = _layout(
        f"Language per method ('{NO_LANG}': no language filter ran, or too little prose)",
        barmode="stack",
        showlegend=True,
        xaxis={"title": {"text": "traces.lang (set by the language filter)"}},
        yaxis={"title": {"text": "traces"}},
    )
    return {"data": data, "layout": layout}


def _reasons_figure(wh: Warehouse, scope: str, args: list) -> dict:
    lo, hi = _rows(wh, f"SELECT min(created_at), max(created_at) FROM traces {scope}", args)[0]
    span = (hi - lo).total_seconds() if lo and hi else 0
    unit = "minute" if span < 6 * 3600 else "hour" if span < 10 * 86400 else "day"
    where = f"{scope} {'AND' if scope else 'WHERE'} status = 'rejected'"
    rows = _rows(
        wh,
        f"SELECT date_trunc('{unit}', created_at) AS t, reject_reason, count(*) FROM traces "
        f"{where} GROUP BY ALL ORDER BY 1, 2",
        args,
    )
    by_reason = _series((reason, t.isoformat(), n) for t, reason, n in rows)
    data = [{"type": "bar", "name": r, "x": xs, "y": ys} for r, (xs, ys) in by_reason.items()]
    layout = _layout(
        f"Reject reasons over time (per {unit} of generation)",
        barmode="stack",
        yaxis={"title": {"text": "rejected traces"}},
    )
    return {"data": data, "layout": layout}


def _tree_figure(wh: Warehouse, scope: str, args: list) -> dict:
    rows = _rows(
        wh,
        f"SELECT count(*) AS size, max(depth) AS depth FROM nodes {scope} GROUP BY tree_id",
        args,
    )
    data = []
    if rows:
        data = [
            {"type": "histogram", "name": "nodes per tree", "x": [r[0] for r in rows]},
            {
                "type": "histogram",
                "name": "depth per tree",
                "x": [r[1] for r in rows],
                "xaxis": "x2",
                "yaxis": "y2",
            },
        ]
    layout = _layout(
        f"Search trees: size and depth ({len(rows)} trees)",
        grid={"rows": 1, "columns": 2, "pattern": "independent"},
        xaxis={"title": {"text": "nodes"}},
        xaxis2={"title": {"text": "max depth"}},
    )
    return {"data": data, "layout": layout}


def _sample_traces(wh: Warehouse, scope: str, args: list, sample: int) -> list[dict]:
    """At most `sample` traces per (method, status), chosen by hash of trace_id; only their
    ids go through the sort, the text is read for the chosen ones."""
    cols = (
        "t.trace_id, t.run_id, t.method, t.status, t.reject_reason, t.predicted, t.correct, "
        f"t.n_tokens, t.lang, t.score, left(t.thought, {THOUGHT_CHARS}), "
        "left(t.response, 2000), t.meta, left(p.question, 2000), p.gold, p.source"
    )
    rows = _rows(
        wh,
        f"WITH ids AS (SELECT trace_id FROM traces {scope} QUALIFY row_number() OVER "
        "(PARTITION BY method, status ORDER BY hash(trace_id)) <= ?) "
        f"SELECT {cols} FROM ids JOIN traces t USING (trace_id) "
        "LEFT JOIN problems p USING (problem_id) ORDER BY t.method, t.status, t.trace_id",
        [*args, sample],
    )
    keys = [
        "trace_id", "run_id", "method", "status", "reason", "predicted", "correct",
        "n_tokens", "lang", "score", "thought", "response", "meta", "question", "gold",
        "source",
    ]  # fmt: skip
    out = []
    for row in rows:
        rec = dict(zip(keys, row, strict=True))
        meta = json.loads(rec.pop("meta") or "{}")
        rec["journey"] = (meta.get("journey") or {}).get("errors") or []
        rec["tree_id"] = meta.get("tree_id")
        rec["path"] = meta.get("path")
        rec["verdicts"] = meta.get("verdicts") or {}
        out.append(rec)
    return out


_NODE_KEYS = ("id", "parent", "depth", "text", "terminal", "correct", "visits", "q", "mc")


def _sample_trees(wh: Warehouse, scope: str, args: list, trees: int) -> list[dict]:
    """At most `trees` trees (those with a kept trace first), every node with Q, visits and
    its check; the kept paths come from the tree traces' `meta.path`."""
    ids = _rows(
        wh,
        f"SELECT tree_id, any_value(problem_id) FROM nodes {scope} GROUP BY 1 "
        "ORDER BY hash(tree_id) LIMIT ?",
        [*args, trees * 4],
    )
    if not ids:
        return []
    kept = {
        tid: json.loads(path)
        for tid, path in _rows(
            wh,
            "SELECT json_extract_string(meta, '$.tree_id'), json_extract(meta, '$.path') "
            "FROM traces WHERE method = 'tree' AND status = 'kept' AND "
            "json_extract_string(meta, '$.tree_id') IN (SELECT unnest(?)) "
            "QUALIFY row_number() OVER (PARTITION BY json_extract_string(meta, '$.tree_id') "
            "ORDER BY score DESC NULLS LAST) = 1",
            [[t for t, _ in ids]],
        )
    }
    chosen = sorted(ids, key=lambda r: r[0] not in kept)[:trees]
    out = []
    for tid, pid in chosen:
        nodes = _rows(
            wh,
            "SELECT node_id, parent_id, depth, left(text, 600), is_terminal, correct, visits, "
            "q_value, mc_value, json_extract(meta, '$.check') FROM nodes WHERE tree_id = ? "
            "ORDER BY depth, node_id LIMIT 2000",
            [tid],
        )
        question = _rows(
            wh, "SELECT left(question, 1000) FROM problems WHERE problem_id = ?", [pid]
        )
        out.append(
            {
                "tree_id": tid,
                "question": question[0][0] if question else "",
                "kept_path": kept.get(tid) or [],
                "nodes": [
                    {
                        **dict(zip(_NODE_KEYS, n[:9], strict=True)),
                        "check": json.loads(n[9] or "null"),
                    }
                    for n in nodes
                ],
            }
        )
    return out
