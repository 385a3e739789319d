"""Train a process reward model (PRM) on `export prm` rows: `train --kind prm`.

Rows are the stepwise layout `export prm` writes (`prompt`, `completions`, `labels`: one
bool per step, the Math-Shepherd / TRL <= 1.13 format). Each row becomes one sequence laid
out by `engines.prm.prm_inputs` (`question SEP step SEP ...`, the label on the last token
of each step's separator, every other token ignored), and a token classifier with two
labels (0 bad, 1 good) starts from `base` (a causal LM folder: its body is kept, the
classification head is new) and trains with transformers' `Trainer` and
`DataCollatorForTokenClassification`.

Why not TRL: its `PRMTrainer` left TRL in 1.14 (PR #7133; this project pins 1.16). That
trainer was a thin subclass of the same transformers `Trainer` whose own code only
tokenised rows this way; keeping the tokenisation here (shared with scoring, so both read
the same positions) and running the `Trainer` it wrapped is less code than pinning an old
TRL beside the new one, and nothing of ours re-implements a training loop.

A share of the problems (`holdout`, by a hash of the problem id) is never trained on: after
training, the model scores every distinct held-out step (each tree node once) and the
metrics report the AUROC of good against bad steps, the same without answer steps, and how
often a good step beats a bad sibling (`heldout_metrics` says why all three). The folder
gets the weights, the tokenizer and `reasonfactory_prm.json` (the separator), which
`PrmScorer` reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from reasonfactory.generators.engines.prm import PRM_FILE, PrmConfig, PrmScorer, prm_inputs
from reasonfactory.generators.trainers import log_to_logger, trainer_settings
from reasonfactory.generators.verify.answers import extract_boxed
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.ids import digest

NEEDED = {"prompt", "completions", "labels"}


def held_out(key: str, share: float) -> bool:
    """Whether a problem is in the held-out share (a stable hash of its id, not the order).

    >>> held_out("p_1", 0.0), held_out("p_1", 0.999999)
    (False, True)
    """
    return int(digest("prm-holdout", key, length=8), 16) / 16**8 < share


def auroc(good: list[float], bad: list[float]) -> float:
    """P(a good step scores above a bad one), ties counting half: the Mann-Whitney U of the
    two samples over their product (scipy, a dependency of datasketch).

    >>> auroc([0.9, 0.8], [0.1, 0.85])
    0.75
    """
    from scipy.stats import mannwhitneyu

    if not good or not bad:
        return float("nan")
    return float(mannwhitneyu(good, bad).statistic) / (len(good) * len(bad))


def train_prm(dataset, data, base: str | Path, out: str | Path, config) -> dict:
    """Train a PRM from `base` on `dataset` (the rows of the export(s) `data`, read by
    `generators.train.load_export`); save it to `out`; return metrics.

    `config` is a `generators.train.TrainConfig` with `kind: prm`."""
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        set_seed,
    )

    missing = NEEDED - set(dataset.column_names)
    if missing:
        raise UserError(
            f"{', '.join(map(str, data))}: a prm export needs the columns {sorted(NEEDED)}; "
            f"missing {sorted(missing)} (export with `export prm`)"
        )
    rows = dataset.to_list()
    keys = [str(r.get("problem_id") or r["prompt"]) for r in rows]
    train_rows = [r for r, k in zip(rows, keys, strict=True) if not held_out(k, config.holdout)]
    test_rows = [r for r, k in zip(rows, keys, strict=True) if held_out(k, config.holdout)]
    if not train_rows:
        raise UserError(f"{', '.join(map(str, data))}: no rows to train on after the holdout")

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    use_cpu = not torch.cuda.is_available() if config.use_cpu is None else config.use_cpu
    threads = torch.get_num_threads()
    if use_cpu and config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)  # one thread: see generators/train.py
    try:
        # The head is new, drawn when the model is built: before the Trainer seeds anything.
        set_seed(config.seed)
        model = AutoModelForTokenClassification.from_pretrained(
            str(base),
            num_labels=2,
            id2label={0: "bad", 1: "good"},
            label2id={"bad": 0, "good": 1},
            dtype=torch.float32,
        )
        limit = min(config.max_length, _context(model))
        encoded = [
            _encode(r, tokenizer, config.step_separator, limit, fresh)
            for r, fresh in zip(train_rows, first_sightings(train_rows), strict=True)
            if any(fresh)
        ]
        encoded = [e for e in encoded if e is not None]
        if not encoded:
            raise UserError(f"every row is longer than max_length {limit} tokens")
        started = time.perf_counter()
        trainer = Trainer(
            model=model,
            args=_args(config, Path(out) / ".trainer", use_cpu),
            train_dataset=_as_dataset(encoded),
            data_collator=DataCollatorForTokenClassification(tokenizer),
        )
        log_to_logger(trainer)
        result = trainer.train()
        seconds = time.perf_counter() - started
        out = Path(out)
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        (out / PRM_FILE).write_text(
            json.dumps({"separator": config.step_separator, "labels": {"0": "bad", "1": "good"}}),
            encoding="utf-8",
        )
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        metrics = {
            "rows": len(encoded),
            "steps": trainer.state.global_step,
            "epochs": round(trainer.state.epoch or 0.0, 3),
            "first_loss": round(losses[0], 5) if losses else None,
            "train_loss": round(result.training_loss, 5),
            "last_loss": round(losses[-1], 5) if losses else None,
            "seconds": round(seconds, 2),
        }
        device = "cpu" if use_cpu else "cuda"
        prm = PrmConfig(model=str(out), device=device, cpu_threads=config.cpu_threads)
        scorer = PrmScorer(model.eval(), tokenizer, config.step_separator, prm, device)
        metrics.update(heldout_metrics(scorer, test_rows))
        return metrics
    finally:
        torch.set_num_threads(threads)


def first_sightings(rows: list[dict]) -> list[list[bool]]:
    """Per row, which of its steps are seen for the first time (a tree node labelled once).

    `export prm` writes one row per root-to-leaf path, so a step near the root is in every
    path below it: labelled in each, a tree's shared steps would outweigh its leaves by the
    number of paths through them, and the loss would mostly re-teach the early, easy steps.
    Each distinct step (`tree_id`, node id) is labelled in the first row that holds it and
    ignored (-100) in the others, as `heldout_metrics` counts each once; rows without node
    ids (another exporter's) keep every label.

    >>> rows = [{"tree_id": "t", "node_ids": ["0.1", "0.1.1"]},
    ...         {"tree_id": "t", "node_ids": ["0.1", "0.1.2"]},
    ...         {"node_ids": None, "completions": ["a"]}]
    >>> first_sightings(rows)
    [[True, True], [False, True], [True]]
    """
    seen: set[tuple] = set()
    out = []
    for r in rows:
        ids = r.get("node_ids")
        if not ids:
            out.append([True] * len(r["completions"]))
            continue
        keys = [(r.get("tree_id"), node) for node in ids]
        out.append([k not in seen for k in keys])
        seen.update(keys)
    return out


def heldout_metrics(scorer, rows: list[dict]) -> dict:
    """How the PRM ranks held-out steps, each distinct step (node) once, three ways:

    - `heldout_auroc`: good against bad over every step;
    - `heldout_auroc_steps`: the same without answer steps (a step holding a boxed answer;
      `heldout_working_steps` counts the rest). A
      tree stops a path at its first failed step, so an answer step is only ever reached on a
      right path and is always labelled good: a PRM that only tells an answer paragraph from
      a working step scores well above 0.5 on `heldout_auroc` and learns nothing a search
      can use (the bench PRM of README's search section did exactly that);
    - `heldout_sibling_win`: over (good, bad) pairs of steps with the same parent (rows with
      node ids), the share where the good one scores higher, ties half: the choice a beam
      search makes (`heldout_sibling_pairs` counts them).
    """
    seen: set[tuple] = set()
    items, owners = [], []
    for n, r in enumerate(rows):
        ids = r.get("node_ids") or [None] * len(r["completions"])
        fresh = []
        for i, node in enumerate(ids):
            key = (r.get("tree_id"), node) if node is not None else (n, i)
            if key not in seen:
                seen.add(key)
                fresh.append(i)
        if fresh:
            items.append((r["prompt"], r["completions"]))
            owners.append((r, fresh))
    steps = []  # (label, score, is an answer step, parent key or None)
    for (r, fresh), scores in zip(owners, scorer.score_steps(items), strict=True):
        ids = r.get("node_ids")
        for i in fresh:
            parent = (r.get("tree_id"), ids[i - 1] if i else None) if ids else None
            answer = extract_boxed(r["completions"][i]) is not None
            steps.append((bool(r["labels"][i]), scores[i], answer, parent))
    good = [s for ok, s, _, _ in steps if ok]
    bad = [s for ok, s, _, _ in steps if not ok]
    work_good = [s for ok, s, a, _ in steps if ok and not a]
    work_bad = [s for ok, s, a, _ in steps if not ok and not a]
    pairs, wins = sibling_wins(steps)
    return {
        "heldout_rows": len(rows),
        "heldout_steps": len(good) + len(bad),
        "heldout_good": len(good),
        "heldout_bad": len(bad),
        "heldout_auroc": round(auroc(good, bad), 4) if good and bad else None,
        "heldout_auroc_steps": (
            round(auroc(work_good, work_bad), 4) if work_good and work_bad else None
        ),
        "heldout_working_steps": len(work_good) + len(work_bad),
        "heldout_sibling_pairs": pairs,
        "heldout_sibling_win": round(wins / pairs, 4) if pairs else None,
    }


def sibling_wins(steps: list[tuple]) -> tuple[int, float]:
    """(pairs, wins) over (good, bad) steps under one parent; a tie is half a win.

    >>> sibling_wins([(True, 0.9, False, "p"), (False, 0.2, False, "p"),
    ...               (False, 0.9, False, "p"), (False, 0.1, False, "q"), (True, 1, False, None)])
    (2, 1.5)
    """
    by_parent: dict = {}
    for ok, score, _, parent in steps:
        if parent is not None:
            by_parent.setdefault(parent, ([], []))[0 if ok else 1].append(score)
    pairs, wins = 0, 0.0
    for good, bad in by_parent.values():
        for g in good:
            for b in bad:
                pairs += 1
                wins += 1.0 if g > b else 0.5 if g == b else 0.0
    return pairs, wins


def _encode(row: dict, tokenizer, separator: str, limit: int, fresh: list[bool]) -> dict | None:
    ids, positions = prm_inputs(tokenizer, row["prompt"], row["completions"], separator)
    if len(ids) > limit:
        return None  # a cut row would lose the labels of its first steps; left out
    labels = [-100] * len(ids)
    for at, good, new in zip(positions, row["labels"], fresh, strict=True):
        if new:
            labels[at] = int(bool(good))
    return {"input_ids": ids, "labels": labels}


def _as_dataset(encoded: list[dict]):
    import datasets

    # The features spelled out: datasets would read -100 labels into a bool column otherwise.
    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int64")),
            "labels": datasets.List(datasets.Value("int64")),
        }
    )
    return datasets.Dataset.from_list(encoded, features=features)


def _context(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", 0) or 1_000_000)


def _args(config, output_dir: Path, use_cpu: bool):
    from transformers import TrainingArguments

    return TrainingArguments(**trainer_settings(TrainingArguments, config, output_dir, use_cpu))
