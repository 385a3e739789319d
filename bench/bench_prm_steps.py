"""What a PRM ranks on sim tree data it never saw: over every step, without answer steps, and
between siblings (the choice a beam search makes), with the arithmetic verifier's scores on
the same steps as the ceiling.

    python bench/bench_prm_steps.py --prm DIR [--problems 120] [--seed 1]

Input: `--problems` built-in arithmetic problems (difficulty 3-4, `--seed`; seed 1 is
`bench_search.py`'s table), searched by `tree` on the sim at error_rate 0.3 (rollouts 6,
width 4), exported with `export prm`, and scored by the PRM folder `--prm` (what `train --kind
prm` writes, e.g. `bench_search.py --train-prm DIR`). Each distinct step is scored once
(`train_prm.heldout_metrics`, the metrics `train --kind prm` reports). Why three figures: a
tree stops a path at its first failed step, so its answer steps are always labelled good,
and a PRM that only spots answer paragraphs scores above 0.5 over all steps while it cannot
tell a slipped step from its right sibling.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines.prm import PrmConfig, PrmScorer
from reasonfactory.generators.engines.sim import SimEngine
from reasonfactory.generators.methods.beam import EquationsScorer
from reasonfactory.generators.methods.tree import TreeConfig, tree
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.generators.train_prm import heldout_metrics
from reasonfactory.warehouse.export_tree import export_prm
from reasonfactory.warehouse.store import Warehouse

SHOWN = ("heldout_steps", "heldout_auroc", "heldout_auroc_steps", "heldout_sibling_win")


def tree_rows(n: int, seed: int, folder: Path | None = None) -> list[dict]:
    """`export prm` rows of `tree` on the sim over `n` problems (tests/test_prm_sim.py too)."""
    tmp = folder or Path(tempfile.mkdtemp(prefix="rf-bench-prm-steps-"))
    problems = load_problems("builtin:arithmetic", limit=n, difficulty=(3, 4), seed=seed)
    found = tree(problems, SimEngine(error_rate=0.3), TreeConfig(rollouts=6, width=4),
                 RunContext("bench", "fp", "sim"))  # fmt: skip
    with Warehouse(tmp / "wh.duckdb") as wh:
        wh.ingest("problems", problems)
        wh.ingest("nodes", found.nodes)
    export_prm(tmp / "wh.duckdb", tmp / "prm", fmt="jsonl")
    return [json.loads(line) for line in (tmp / "prm" / "data.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prm", required=True, help="a PRM folder (train --kind prm)")
    ap.add_argument("--problems", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = tree_rows(args.problems, args.seed)
    print(f"{args.problems} problems (builtin:arithmetic, difficulty 3-4, seed {args.seed}), "
          f"tree on the sim at error_rate 0.3: {len(rows)} paths")  # fmt: skip
    pairs = None
    for name, scorer in (("PRM " + args.prm, PrmScorer.load(PrmConfig(model=args.prm))),
                         ("equations (the verifier)", EquationsScorer())):  # fmt: skip
        m = heldout_metrics(scorer, rows)
        pairs = m["heldout_sibling_pairs"]
        print(f"  {name}: " + ", ".join(f"{k.removeprefix('heldout_')} {m[k]}" for k in SHOWN))
    print(f"  sibling pairs (a good and a bad step under one parent): {pairs}")


if __name__ == "__main__":
    main()
