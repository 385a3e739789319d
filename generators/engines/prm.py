"""Process reward models (PRMs): a score for every step of a solution, batched.

A PRM here is a token classifier (`AutoModelForTokenClassification`, label 0 bad, 1 good)
that reads a problem and its steps as one sequence, `question SEP step_1 SEP step_2 SEP ...`,
and scores each step at the last token of the separator after it: P(good) = softmax of the
two logits there. That is the Math-Shepherd layout (a tag after each step, read as a
two-way choice) and the one TRL <= 1.13's `PRMTrainer` trained on the stepwise rows
`export prm` writes (`prompt`, `completions`, `labels`: a label on the last token of each
step's separator). `prm_inputs` is the one place that lays a sequence out, so
`train --kind prm` (generators/train_prm.py) and scoring read the same positions. The
separator is saved in the model folder (`reasonfactory_prm.json`); the default is the step
boundary `\\n\\n`, which no step contains. A causal model's score at a step depends only on
the steps before it, so a path's earlier scores do not change as it grows.

`aggregate` turns a path's step scores into one number as search-and-learn does (`last`,
`min`, `prod`). The default is `min`: `export prm` labels each step by its own check, so a
path is as good as its worst step, and a PRM `train --kind prm` makes learns that; `last`
suits a PRM trained on rollout labels (Math-Shepherd: can this step still reach the answer?).

`PrmScorer` runs the model with transformers on the CPU or a GPU, in batches of similar
length; `prm_for` builds one per process and model folder.

Not here: vLLM's pooling runner (the scorer runs in the search's process with
transformers); training (generators/train_prm.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from pydantic import Field, model_validator
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines import with_weights_stamp
from reasonfactory.generators.prompts import STEP_BOUNDARY, parse_completion
from reasonfactory.warehouse.errors import UserError

PRM_FILE = "reasonfactory_prm.json"  # what `train --kind prm` writes beside the weights
DEFAULT_SEPARATOR = "\n\n"
Aggregate = Literal["last", "min", "prod"]


class PrmConfig(StrictModel):
    """A PRM for a search or a selection: a folder `train --kind prm` wrote.

    Batch size, device and threads are in the run's identity: they can change a score in its
    last bits, and with it which of two close steps a search keeps."""

    kind: Literal["prm"] = "prm"
    model: str = Field(description="a PRM folder (reasonfactory train --kind prm)")
    aggregate: Aggregate = "min"  # see the module docstring
    batch_size: int = Field(32, ge=1, le=4096)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int | None = Field(1, ge=1, description="torch threads on a CPU")
    weights: str = Field("", description="stamp of the PRM folder's weights (filled in)")
    STAMPS: ClassVar[tuple[str, ...]] = ("weights",)

    @model_validator(mode="before")
    @classmethod
    def _stamp_weights(cls, data):
        # A PRM trained again into the same folder guides the search elsewhere: its stamp is
        # in the run's identity, as a vllm model folder's is.
        return with_weights_stamp(data)


class StepScorer(Protocol):
    """Scores the steps of (question, steps) items: one P(good) per step, in order."""

    def score_steps(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]: ...


def aggregate(scores: Sequence[float | None], how: Aggregate) -> float:
    """A path's score from its step scores (search-and-learn's `aggregate_scores`); steps with
    no score (cut off by the model's length) are skipped; no score at all is 0.

    >>> aggregate([0.9, 0.2, 0.8], "last"), aggregate([0.9, 0.2, 0.8], "min")
    (0.8, 0.2)
    >>> round(aggregate([0.5, 0.5], "prod"), 2), aggregate([], "min")
    (0.25, 0.0)
    """
    known = [s for s in scores if s is not None]
    if not known:
        return 0.0
    if how == "last":
        return known[-1]
    if how == "min":
        return min(known)
    if how == "prod":
        return math.prod(known)
    raise ValueError(f"aggregate must be last, min or prod, not {how!r}")


def prm_inputs(
    tokenizer, question: str, steps: Sequence[str], separator: str
) -> tuple[list[int], list[int]]:
    """Token ids of `question SEP step_1 SEP ...` and the position that scores each step (the
    last token of the separator after it). BOS first when the tokenizer has one. Pieces are
    tokenised apart, as `PRMTrainer` did, so a step's tokens never merge with the separator.

    >>> class Chars:  # one token per character
    ...     bos_token_id = None
    ...     def __call__(self, text, add_special_tokens=False):
    ...         return {"input_ids": list(map(ord, text))}
    >>> ids, at = prm_inputs(Chars(), "Q", ["a", "bc"], "|")
    >>> "".join(map(chr, ids)), at
    ('Q|a|bc|', [3, 6])
    """
    sep = tokenizer(separator, add_special_tokens=False)["input_ids"]
    ids = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids += tokenizer(question, add_special_tokens=False)["input_ids"] + sep
    positions = []
    for step in steps:
        ids += tokenizer(step, add_special_tokens=False)["input_ids"] + sep
        positions.append(len(ids) - 1)
    return ids, positions


def fit_length(
    ids: list[int], positions: list[int], max_length: int
) -> tuple[list[int], list[int | None]]:
    """Keep the last `max_length` tokens (the latest steps matter most to a search); a step
    whose scoring position was cut off gets None.

    >>> fit_length([1, 2, 3, 4, 5], [1, 4], 3)
    ([3, 4, 5], [None, 2])
    """
    cut = max(0, len(ids) - max_length)
    return ids[cut:], [p - cut if p >= cut else None for p in positions]


def read_prm_settings(folder: str | Path) -> dict:
    """The settings `train --kind prm` saved with a PRM (its step separator)."""
    folder = Path(folder)
    path = folder / PRM_FILE
    if not (folder / "config.json").exists():
        raise UserError(
            f"{folder}: not a model folder (no config.json); train one with "
            "`reasonfactory train --kind prm`"
        )
    if not path.exists():
        raise UserError(
            f"{folder}: no {PRM_FILE}; a PRM folder is what `reasonfactory train --kind prm` writes"
        )
    return json.loads(path.read_text(encoding="utf-8"))


class PrmScorer:
    """A token-classification PRM run with transformers (`PrmConfig`); `score_steps` batches."""

    def __init__(self, model, tokenizer, separator: str, config: PrmConfig, device: str):
        self.model, self.tokenizer, self.separator = model, tokenizer, separator
        self.config, self.device = config, device
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        self.calls = self.sequences = 0  # for benchmarks: forward passes and rows scored

    @classmethod
    def load(cls, config: PrmConfig) -> PrmScorer:
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        settings = read_prm_settings(config.model)
        device = config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForTokenClassification.from_pretrained(config.model).to(device).eval()
        return cls(model, tokenizer, settings.get("separator", DEFAULT_SEPARATOR), config, device)

    def score_steps(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """P(good) for every step of every (question, steps) item.

        Cut-off steps (longer than the model's context) score None inside; here they are
        given the first known score after them, so callers always get floats."""
        import torch

        laid = [
            fit_length(*prm_inputs(self.tokenizer, q, steps, self.separator), self.max_length)
            for q, steps in items
        ]
        out: list[list[float]] = [[] for _ in items]
        order = sorted(range(len(laid)), key=lambda i: len(laid[i][0]))
        threads = torch.get_num_threads()
        if self.device == "cpu" and self.config.cpu_threads is not None:
            torch.set_num_threads(self.config.cpu_threads)
        try:
            for start in range(0, len(order), self.config.batch_size):
                batch = order[start : start + self.config.batch_size]
                for i, probs in zip(batch, self._forward([laid[i] for i in batch]), strict=True):
                    out[i] = _fill(probs)
        finally:
            torch.set_num_threads(threads)
        return out

    def _forward(self, rows: list[tuple[list[int], list[int | None]]]) -> list[list]:
        import torch

        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (row, _) in enumerate(rows):  # right padding: causal positions stay put
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            good = logits.logits.float().softmax(-1)[..., 1].cpu()
        self.calls += 1
        self.sequences += len(rows)
        return [
            [None if p is None else float(good[r, p]) for p in at] for r, (_, at) in enumerate(rows)
        ]


def _fill(probs: list[float | None]) -> list[float]:
    """Steps cut off at the front take the first known score after them (0.5 if none)."""
    known = next((p for p in probs if p is not None), 0.5)
    return [known if p is None else p for p in probs]


class PrmPairScorer:
    """A PRM as a best-of-n verifier: a whole completion's score, its steps aggregated.

    A completion is split as the search writes paths, into the thought's paragraphs; the
    answer paragraph after `</think>` is scored only when the thought is empty, since
    `export prm` (what a PRM is trained on) has no answer paragraphs."""

    def __init__(self, scorer: StepScorer, how: Aggregate):
        self.scorer, self.how = scorer, how

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        items = []
        for question, text in pairs:
            parsed = parse_completion(text)
            steps = [p.strip() for p in parsed.thought.split(STEP_BOUNDARY) if p.strip()]
            items.append((question, steps or ([parsed.response] if parsed.response else [])))
        return [aggregate(s, self.how) for s in self.scorer.score_steps(items)]


_LOADED: dict[str, PrmScorer] = {}


def prm_for(config: PrmConfig) -> PrmScorer:
    """The PRM of `config`, loaded once per process (per folder, weights and settings)."""
    key = config.model_dump_json(exclude={"aggregate"})
    if key not in _LOADED:
        _LOADED[key] = PrmScorer.load(config)
    return _LOADED[key]
