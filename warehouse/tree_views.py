"""SQL that turns stored search trees (`nodes`) into PRM rows and DPO pairs.

Pure strings, no I/O: `reasonfactory.warehouse.export_tree` runs them with the user's options, and
`warehouse.schema` registers them with the default options as the `prm` and `dpo` views.

`prm_query`: one row per terminal leaf (an answer, a failed step, a step past the depth
limit), in TRL's stepwise-supervision format (TRL <= 1.13 `PRMTrainer`, the Math-Shepherd
datasets): `prompt` (the question), `completions` (the root-to-leaf step paragraphs, the
answer paragraph last when the leaf is an answer) and `labels` (one bool per completion).
A node's label, in this order: its failure or answer verdict (`correct`: a failed check, a
right or wrong answer); with `labels='mc'`, the Math-Shepherd estimate `mc_value >
threshold` where a rollout ran; the step's own check when it passed (`meta.verified`, an
`equations` or `code` check: good, whatever its subtree did); else `q_value > threshold`.
A node with none of these (no verdict and a NULL Q) has no label: it is never read as bad,
and the rows through it are left out of the export rather than guessed.

`dpo_query`: rStar-Math's preference pairs from sibling steps. A step "leads to" a correct
leaf (or a wrong one: a wrong answer, a failed check, the depth limit) when one lies in its
subtree. At every node with both kinds of children: chosen = the top-2 correct-leading
children by Q, rejected = the bottom-2 wrong-leading ones (4 of a side when the other has
only one), kept when `Q(chosen) - Q(rejected) >= margin` (0.5). Near-identical pairs are
dropped: normalised texts equal, or Levenshtein similarity >= `max_similarity` unless the
rejected step failed its check (then the small difference is the error itself, the most
useful pair there is). `prompt` = the question, a blank line, `<think>` and the shared
prefix of steps; `chosen`/`rejected` = the two sibling steps. `weight` = 1/(#pos * #neg)
at that node, as rStar weights its pairwise loss.
"""

from __future__ import annotations

from typing import Literal

LabelSource = Literal["q", "mc"]

_PATHS = r"""
paths AS (
  SELECT n.tree_id, n.node_id, n.problem_id, n.run_id, n.is_terminal, n.correct,
         []::VARCHAR[] AS completions, []::BOOLEAN[] AS labels, []::VARCHAR[] AS node_ids,
         []::DOUBLE[] AS q_values, []::DOUBLE[] AS mc_values, []::VARCHAR[] AS steps
  FROM nodes n WHERE n.parent_id IS NULL
  UNION ALL
  SELECT c.tree_id, c.node_id, c.problem_id, c.run_id, c.is_terminal, c.correct,
         list_append(p.completions, c.text),
         list_append(p.labels, {label}),
         list_append(p.node_ids, c.node_id),
         list_append(p.q_values, c.q_value),
         list_append(p.mc_values, c.mc_value),
         CASE WHEN c.meta->>'kind' = 'answer' THEN p.steps ELSE list_append(p.steps, c.text) END
  FROM nodes c JOIN paths p ON c.tree_id = p.tree_id AND c.parent_id = p.node_id
)"""


def label_expr(source: LabelSource = "q", threshold: float = 0.0) -> str:
    """The SQL for one node's boolean label (`c` is the node).

    >>> label_expr("q", 0.0)  # doctest: +NORMALIZE_WHITESPACE
    "CASE WHEN c.correct IS NOT NULL THEN c.correct WHEN c.meta->>'verified' = 'true' THEN true
    ELSE c.q_value > 0.0 END"
    """
    t = float(threshold)
    verified = "WHEN c.meta->>'verified' = 'true' THEN true"
    if source == "q":
        return f"CASE WHEN c.correct IS NOT NULL THEN c.correct {verified} ELSE c.q_value > {t} END"
    if source == "mc":
        return (
            "CASE WHEN c.correct IS NOT NULL THEN c.correct "
            f"WHEN c.mc_value IS NOT NULL THEN c.mc_value > {t} {verified} "
            f"ELSE c.q_value > {t} END"
        )
    raise ValueError(f"labels must be q or mc, not {source!r}")


def prm_query(source: LabelSource = "q", threshold: float = 0.0) -> str:
    paths = _PATHS.replace("{label}", label_expr(source, threshold))
    return f"""
WITH RECURSIVE {paths}
SELECT pr.question AS prompt, p.completions, p.labels,
       p.problem_id, p.run_id, p.tree_id, p.node_id AS leaf_id, p.correct AS leaf_correct,
       p.node_ids, p.q_values, p.mc_values, pr.source
FROM paths p JOIN problems pr USING (problem_id)
WHERE p.is_terminal AND len(p.completions) > 0
  AND len(list_filter(p.labels, lambda x: x IS NULL)) = 0
"""


def dpo_query(margin: float = 0.5, max_similarity: float = 0.9) -> str:
    m, s = float(margin), float(max_similarity)
    paths = _PATHS.replace("{label}", label_expr("q", 0.0))
    return rf"""
WITH RECURSIVE {paths},
leaves AS (
  SELECT tree_id, node_id, parent_id,
         CASE WHEN correct THEN 'good'
              WHEN correct = false OR meta->>'reason' IN ('max_depth', 'truncated') THEN 'bad'
         END AS outcome
  FROM nodes WHERE is_terminal
),
below AS (
  SELECT tree_id, node_id, parent_id, outcome FROM leaves WHERE outcome IS NOT NULL
  UNION ALL
  SELECT b.tree_id, n.node_id, n.parent_id, b.outcome
  FROM below b JOIN nodes n ON n.tree_id = b.tree_id AND n.node_id = b.parent_id
),
flags AS (
  SELECT tree_id, node_id, bool_or(outcome = 'good') AS has_good,
         bool_or(outcome = 'bad') AS has_bad
  FROM below GROUP BY ALL
),
kids AS (
  SELECT c.tree_id, c.parent_id, c.node_id, c.text, c.q_value, c.correct, f.has_good, f.has_bad,
         lower(regexp_replace(trim(c.text), '\s+', ' ', 'g')) AS norm
  FROM nodes c JOIN flags f USING (tree_id, node_id)
  WHERE c.parent_id IS NOT NULL AND c.meta->>'kind' = 'step' AND c.q_value IS NOT NULL
),
pos AS (
  SELECT *, row_number() OVER (PARTITION BY tree_id, parent_id ORDER BY q_value DESC, node_id)
              AS rnk, count(*) OVER (PARTITION BY tree_id, parent_id) AS n_side
  FROM kids WHERE has_good
),
neg AS (
  SELECT *, row_number() OVER (PARTITION BY tree_id, parent_id ORDER BY q_value ASC, node_id)
              AS rnk, count(*) OVER (PARTITION BY tree_id, parent_id) AS n_side
  FROM kids WHERE has_bad
),
sides AS (
  SELECT p.tree_id, p.parent_id, p.node_id AS chosen_id, p.text AS chosen, p.q_value AS chosen_q,
         n.node_id AS rejected_id, n.text AS rejected, n.q_value AS rejected_q,
         coalesce(n.correct = false, false) AS rejected_failed,
         least(p.n_side, CASE WHEN n.n_side = 1 THEN 4 ELSE 2 END) AS k_pos,
         least(n.n_side, CASE WHEN p.n_side = 1 THEN 4 ELSE 2 END) AS k_neg,
         p.rnk AS pos_rank, n.rnk AS neg_rank, p.norm AS pos_norm, n.norm AS neg_norm
  FROM pos p JOIN neg n ON p.tree_id = n.tree_id AND p.parent_id = n.parent_id
  WHERE p.node_id <> n.node_id
),
pairs AS (
  SELECT *, 1.0 - levenshtein(pos_norm, neg_norm)
                  / greatest(length(pos_norm), length(neg_norm), 1) AS similarity
  FROM sides
  WHERE pos_rank <= k_pos AND neg_rank <= k_neg AND chosen_q - rejected_q >= {m}
)
SELECT pr.question || chr(10) || chr(10) || '<think>' || chr(10)
         || CASE WHEN len(pa.steps) = 0 THEN ''
                 ELSE array_to_string(pa.steps, chr(10) || chr(10)) || chr(10) || chr(10) END
         AS prompt,
       x.chosen, x.rejected, pr.question, pa.steps AS prefix_steps,
       pa.problem_id, pa.run_id, x.tree_id, x.parent_id AS node_id, x.chosen_id, x.rejected_id,
       x.chosen_q, x.rejected_q, x.chosen_q - x.rejected_q AS margin, x.rejected_failed,
       x.similarity, 1.0 / (x.k_pos * x.k_neg) AS weight, pr.source
FROM pairs x
JOIN paths pa ON pa.tree_id = x.tree_id AND pa.node_id = x.parent_id
JOIN problems pr ON pr.problem_id = pa.problem_id
WHERE x.pos_norm <> x.neg_norm AND (x.rejected_failed OR x.similarity < {s})
"""


PRM_VIEW = f"CREATE OR REPLACE VIEW prm AS {prm_query()}"
DPO_VIEW = f"CREATE OR REPLACE VIEW dpo AS {dpo_query()}"
