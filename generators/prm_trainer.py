"""The PRM's training loss: the step labels, plus next-token prediction on the good steps.

A PRM learns from one bit per step (good or bad, at the separator after it). A base that
already reads the domain (a pretrained or fine-tuned LM, as Math-Shepherd's PRMs start from
their policy) turns that bit into a comparison it can make; a base from random weights (the
loop's tiny student) gets too little signal from it to learn what makes a step right: the
wave-3 PRM from the student learned to tell an answer paragraph from a working step and
ranked working steps at chance (AUROC 0.50, bench/bench_prm_steps.py).

So the loss here adds, with weight `lm_weight` (`TrainConfig.prm_lm_weight`), the causal LM
loss of predicting each token of the steps labelled good from the tokens before it: every
token of a right step is a target (about twenty per step, against one bit), and a model
that predicts what a right step writes has what it needs to see that a step wrote something
else. The LM head is the input embedding matrix (weight tying, as the student and most
small LMs have), so nothing is added to the saved model: the folder stays a plain token
classifier that `PrmScorer` reads. `lm_weight: 0` is the plain token-classification loss.

Not hand-written beyond the loss: the `Trainer` runs the loop; `collate` pads two label
columns (transformers' token-classification collator pads one).
"""

from __future__ import annotations

from transformers import Trainer


def lm_targets(ids: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """Next-token targets: position t predicts ids[t + 1] where that token lies in one of the
    `spans` ([start, end) token ranges); -100 elsewhere.

    >>> lm_targets([5, 6, 7, 8, 9], [(2, 4)])
    [-100, 7, 8, -100, -100]
    """
    out = [-100] * len(ids)
    for start, end in spans:
        for t in range(max(start, 1), end):
            out[t - 1] = ids[t]
    return out


def collate(pad_id: int):
    """Right-pad `input_ids` (with `pad_id`), `labels` and `lm_labels` (with -100) and build the
    attention mask."""
    import torch

    def pad(rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        batch = {
            "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
            "labels": torch.full((len(rows), width), -100, dtype=torch.long),
            "lm_labels": torch.full((len(rows), width), -100, dtype=torch.long),
        }
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            batch["input_ids"][i, :n] = torch.tensor(r["input_ids"])
            batch["attention_mask"][i, :n] = 1
            batch["labels"][i, :n] = torch.tensor(r["labels"])
            batch["lm_labels"][i, :n] = torch.tensor(r.get("lm_labels") or [-100] * n)
        return batch

    return pad


class PrmTrainer(Trainer):
    """transformers' `Trainer` with the loss above; `lm_weight` 0 is its own loss."""

    def __init__(self, *args, lm_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.lm_weight = lm_weight
        self.parts: dict[str, list[float]] = {"label_loss": [], "lm_loss": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch.nn.functional as F

        lm_labels = inputs.pop("lm_labels")
        want_hidden = self.lm_weight > 0 and bool((lm_labels != -100).any())
        outputs = model(**inputs, output_hidden_states=want_hidden)
        loss = outputs.loss
        self.parts["label_loss"].append(float(loss.detach()))
        if want_hidden:
            hidden = outputs.hidden_states[-1]  # after the body's final norm
            logits = hidden @ model.get_input_embeddings().weight.T
            lm = F.cross_entropy(
                logits.flatten(0, 1).float(), lm_labels.flatten(), ignore_index=-100
            )
            self.parts["lm_loss"].append(float(lm.detach()))
            loss = loss + self.lm_weight * lm
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        """The two parts of the loss since the last log line, beside the total."""
        for name, values in self.parts.items():
            if values and "loss" in logs:
                logs[name] = round(sum(values) / len(values), 5)
            values.clear()
        super().log(logs, *args, **kwargs)
