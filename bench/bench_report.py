"""Benchmark `reasonfactory report` on a warehouse of `--traces` traces (default 1,000,000).

Builds the warehouse once with DuckDB SQL (no Python per row): five runs (self_output, tree,
sos, journey, distill), ~1,000-2,000-character thoughts whose steps carry varying numbers,
filter verdicts in `meta`, journey detours with offsets, distill token counts, created_at over
three days, and `--trees` search trees of 25 nodes each in `nodes`. Then runs the `report`
command in a subprocess, as a user would, and prints its wall time, its peak RSS and the size
of the page. Target: under 60 s with bounded memory (the page holds a sample, not the rows).
This prints numbers; it is not a test and asserts nothing.

    .venv/bin/python bench/bench_report.py --traces 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reasonfactory.warehouse.store import Warehouse

METHODS = ["self_output", "tree", "sos", "journey", "distill"]
REASONS = ["wrong_answer", "format:no_boxed", "duplicate", "too_long", "no_solution"]

TRACES_SQL = """
INSERT INTO traces (trace_id, problem_id, run_id, method, model, thought, response, predicted,
  correct, n_tokens, lang, status, reject_reason, score, created_at, meta)
SELECT
  't_' || i AS trace_id,
  'p_' || (i // 8) AS problem_id,
  'r_' || (i % 5) AS run_id,
  ['self_output', 'tree', 'sos', 'journey', 'distill'][(i % 5) + 1] AS method,
  'sim' AS model,
  array_to_string(list_transform(range(10 + (hash(i) % 20)::INT),
      lambda s: 'Step ' || s || ': ' || ((i * 7 + s * 13) % 997) || ' * ' || (s + 3) || ' = '
           || (((i * 7 + s * 13) % 997) * (s + 3)) || ', so we carry it on.'), chr(10) || chr(10))
    AS thought,
  'The answer is \\boxed{' || (i % 1000) || '}.' AS response,
  (i % 1000)::VARCHAR AS predicted,
  hash(i) % 3 <> 0 AS correct,
  30 + hash(i) % 900 AS n_tokens,
  CASE WHEN i % 50 = 0 THEN 'zh' ELSE 'en' END AS lang,
  CASE WHEN hash(i) % 3 <> 0 THEN 'kept' ELSE 'rejected' END AS status,
  CASE WHEN hash(i) % 3 <> 0 THEN NULL ELSE ['wrong_answer', 'format:no_boxed', 'duplicate',
       'too_long', 'no_solution'][(hash(i * 3) % 5)::INT + 1] END AS reject_reason,
  (hash(i) % 1000) / 1000.0 AS score,
  TIMESTAMPTZ '2026-11-01 00:00:00+00' + to_seconds((i * 0.26)::BIGINT) AS created_at,
  CASE WHEN i % 5 = 3 THEN '{"verdicts": {"generate": "ok", "format": "ok", "answer": "ok"}, '
       || '"journey": {"errors": [{"error_start": 0, "error_end": 20, "feedback_start": 22, '
       || '"feedback_end": 40, "backtrack_start": 42, "backtrack_end": 60, '
       || '"correction_start": 62, "correction_end": 90, "written": "Step 0"}]}}'
     WHEN i % 5 = 4 THEN '{"verdicts": {"format": "ok", "answer": "ok"}, "tokens_in": '
       || (40 + i % 30) || ', "tokens_out": ' || (30 + hash(i) % 900) || '}'
     WHEN i % 5 = 1 THEN '{"verdicts": {"format": "ok", "answer": "ok"}, "tree_id": "tr_'
       || ((i // 5) % {trees}) || '", "path": ["0", "0.1", "0.1.1"]}'
     ELSE '{"verdicts": {"format": "ok", "answer": "ok"}}' END AS meta
FROM range({n}) t(i)
"""

NODES_SQL = """
INSERT INTO nodes (tree_id, node_id, parent_id, problem_id, run_id, depth, text, is_terminal,
  correct, visits, q_value, mc_value, meta)
SELECT 'tr_' || t AS tree_id,
  CASE WHEN k = 0 THEN '0' ELSE '0.' || ((k - 1) // 4 + 1) || CASE WHEN k > 4 THEN '.' || k
    ELSE '' END END AS node_id,
  CASE WHEN k = 0 THEN NULL WHEN k <= 4 THEN '0' ELSE '0.' || ((k - 1) // 4 + 1) END,
  'p_' || t, 'r_1', CASE WHEN k = 0 THEN 0 WHEN k <= 4 THEN 1 ELSE 2 END,
  'Step: ' || k || ' + ' || t || ' = ' || (k + t), k > 4, k % 3 = 0, 1 + k % 7,
  (hash(t * 31 + k) % 200) / 100.0 - 1, NULL,
  '{"check": {"kind": "equations", "ok": ' || CASE WHEN k % 5 = 0 THEN 'false, "claim": "'
    || k || ' + ' || t || ' = ' || (k + t) || '", "expected": "0"' ELSE 'true' END || '}}'
FROM range({trees}) a(t), range(25) b(k)
"""


def build(path: Path, n: int, trees: int) -> float:
    t0 = time.perf_counter()
    with Warehouse(path) as wh:
        for r in range(5):
            wh.con.execute(
                # columns named: the table gains columns (e.g. `owner`), positions shift
                "INSERT INTO runs (run_id, recipe_name, recipe, fingerprint, started_at, "
                "finished_at, status, meta) VALUES (?, ?, ?, ?, now(), now(), 'completed', '{}')",
                [f"r_{r}", f"bench-{METHODS[r]}", "filters: [format, answer]\n", f"f{r}"],
            )
        wh.con.execute(
            "INSERT INTO problems (problem_id, source, question, gold, meta) "
            "SELECT 'p_' || i, 'bench', 'Compute ' || i || ' * 7.', "
            "(i * 7)::VARCHAR, '{\"difficulty\": ' || (i % 5 + 2) || '}' "
            f"FROM range({n // 8 + 1}) t(i)"
        )
        wh.con.execute(TRACES_SQL.replace("{n}", str(n)).replace("{trees}", str(trees)))
        wh.con.execute(NODES_SQL.replace("{trees}", str(trees)))
        wh.con.execute("CHECKPOINT")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=1_000_000)
    ap.add_argument("--trees", type=int, default=20_000)
    ap.add_argument("--dir", default=None, help="where to build (default: a temp dir)")
    args = ap.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="rf-bench-report-"))
    path = folder / "wh.duckdb"
    if not path.exists():
        took = build(path, args.traces, args.trees)
        print(f"built {args.traces} traces, {args.trees * 25} nodes in {took:.1f} s "
              f"({path.stat().st_size / 1e9:.2f} GB file)")  # fmt: skip
    out = folder / "report.html"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", "report",
         "-w", str(path), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode:
        sys.exit(f"report failed:\n{proc.stdout}\n{proc.stderr}")
    print(proc.stdout.strip())
    print(f"report: {wall:.1f} s wall (target < 60 s), peak RSS {peak:.0f} MB, "
          f"page {out.stat().st_size / 1e6:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
