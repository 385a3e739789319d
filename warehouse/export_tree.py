"""Export search trees as training data: `prm` (stepwise supervision) and `dpo` (step pairs).

Both read the `nodes` table (every node of every tree a `tree` run stored) through the SQL
in `warehouse.tree_views`, filtered by an optional `where` predicate over the output columns,
and write `hf` (`datasets` save_to_disk), `parquet` or `jsonl`, with a dataset card, the way
`export sft` does. DuckDB writes the rows straight to Parquet/JSONL; `hf` loads that Parquet.

- `prm`: `{prompt, completions, labels}` per root-to-leaf path: TRL <= 1.13 `PRMTrainer`'s
  format and the Math-Shepherd datasets'. Labels from Q (`labels="q"`) or from the rollout
  estimate (`labels="mc"`), `value > threshold`.
- `dpo`: `{prompt, chosen, rejected}` from sibling steps (TRL `DPOTrainer`'s standard
  format): the prompt holds the question and the shared steps, chosen leads to a correct
  answer, rejected to a wrong one, with a Q margin (0.5, rStar's rule); near-identical
  pairs are dropped. Extra columns (`question`, `prefix_steps`, ids, Qs, `weight`) let a
  user re-render the prompt with a chat template or weight the loss.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.export import ExportFormat, bound_predicate, copy_to
from reasonfactory.warehouse.outdir import check_out, fresh_out, mark_out
from reasonfactory.warehouse.store import Warehouse
from reasonfactory.warehouse.tree_views import LabelSource, dpo_query, prm_query


def export_prm(
    warehouse: str | Path | None,
    out: str | Path,
    *,
    where: str | None = None,
    fmt: ExportFormat = "hf",
    overwrite: bool = False,
    labels: LabelSource = "q",
    threshold: float = 0.0,
) -> dict:
    """Write the PRM dataset; returns {rows, path, format, where}."""
    if labels not in ("q", "mc"):
        raise UserError(f"--labels {labels!r}: expected q or mc")
    query = prm_query(labels, threshold)
    card = {"template": _PRM_CARD, "labels": labels, "threshold": threshold}
    return _export(warehouse, out, query, where, fmt, overwrite, "leaf_id", card, "prm")


def export_dpo(
    warehouse: str | Path | None,
    out: str | Path,
    *,
    where: str | None = None,
    fmt: ExportFormat = "hf",
    overwrite: bool = False,
    margin: float = 0.5,
    max_similarity: float = 0.9,
) -> dict:
    """Write the DPO dataset; returns {rows, path, format, where}."""
    if not 0 < max_similarity <= 1:
        raise UserError(f"--max-similarity {max_similarity}: expected a number in (0, 1]")
    query = dpo_query(margin, max_similarity)
    card = {"template": _DPO_CARD, "margin": margin, "max_similarity": max_similarity}
    order = "node_id, chosen_id, rejected_id"
    return _export(warehouse, out, query, where, fmt, overwrite, order, card, "dpo")


def _export(warehouse, out, query, where, fmt, overwrite, order, card: dict, kind) -> dict:
    out = Path(out)
    if fmt not in ("hf", "parquet", "jsonl"):
        raise UserError(f"--format {fmt!r}: expected hf, parquet or jsonl")
    check_out(out, overwrite, None)
    predicate = bound_predicate(where) if where else "TRUE"
    selected = f"SELECT * FROM ({query}) WHERE {predicate}"
    with tempfile.TemporaryDirectory() as tmp, Warehouse(warehouse, read_only=True) as wh:
        wh.lock_down(writable=(out, tmp))  # `where` is SQL a user wrote: no other file
        if wh.sql("SELECT count(*) AS n FROM nodes")["n"][0] == 0:
            raise UserError(
                f"no search trees in {wh.path}: run a recipe with `generate: {{method: tree}}` "
                f"before `export {kind}`"
            )
        rows = wh.sql(f"SELECT count(*) AS n FROM ({selected})")["n"][0]
        if rows == 0:
            raise UserError(f"no {kind} rows match {predicate!r}; nothing exported")
        fresh_out(out, overwrite, wh.path)
        ordered = f"{selected} ORDER BY problem_id, tree_id, {order}"
        path = _write(wh, ordered, out, fmt, Path(tmp))
    fields = {k: v for k, v in card.items() if k != "template"}
    text = card["template"].format(rows=rows, **fields)
    (out / "README.md").write_text(text, encoding="utf-8")
    mark_out(out, kind, int(rows))
    return {"rows": int(rows), "path": str(path), "format": fmt, "where": predicate}


def _write(wh: Warehouse, query: str, out: Path, fmt: str, tmp: Path) -> Path:
    if fmt == "jsonl":
        copy_to(wh, query, out / "data.jsonl", "FORMAT json")
        return out / "data.jsonl"
    parquet = (out if fmt == "parquet" else tmp) / "data.parquet"
    copy_to(wh, query, parquet, "FORMAT parquet, COMPRESSION zstd")
    if fmt == "parquet":
        return parquet
    import datasets

    datasets.Dataset.from_parquet(str(parquet), cache_dir=str(tmp)).save_to_disk(str(out))
    return out


_PRM_CARD = """---
tags: [reasonfactory, reasoning, prm, process-supervision]
---
# Process supervision from search trees (PRM)

{rows} root-to-leaf paths of reasonfactory search trees, in TRL's stepwise-supervision
format (the `PRMTrainer` of TRL <= 1.13 and the Math-Shepherd datasets): `prompt` (the
question), `completions` (one reasoning step each; the answer paragraph last when the path
ends in an answer) and `labels` (one bool per step).

A step's label is its verifier or answer verdict when it has one, else
`{labels}_value > {threshold}` (`q`: the MCTS value; `mc`: the share of Math-Shepherd rollouts
from the step that reach the right answer). Columns `node_ids`, `q_values`, `mc_values` keep
the soft values; `leaf_correct` says how the path ends.

Traces from the `sim` engine come from a simulator, not a language model: use them to test
a pipeline, not to train a model you care about.
"""

_DPO_CARD = """---
tags: [reasonfactory, reasoning, dpo, preference]
---
# Step preference pairs from search trees (DPO)

{rows} pairs of sibling steps from reasonfactory search trees, in TRL's standard preference
format: `prompt` (the question, then `<think>` and the steps both share), `chosen` (a next
step that leads to a correct answer) and `rejected` (one that leads to a wrong answer or
fails verification). As in rStar-Math: per branch point the top-2 correct-leading and
bottom-2 wrong-leading children by Q, `Q(chosen) - Q(rejected) >= {margin}`; pairs whose
normalised texts are identical or whose similarity is >= {max_similarity} are dropped unless
the rejected step failed its check. `weight` = 1/(#chosen x #rejected) at the branch point.
`question` and `prefix_steps` let you re-render the prompt with your model's chat template.

Traces from the `sim` engine come from a simulator, not a language model: use them to test
a pipeline, not to train a model you care about.
"""
