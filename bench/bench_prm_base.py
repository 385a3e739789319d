"""Does a pretrained base hold what a PRM must learn on sim steps? Two figures on held-out
working steps (answer steps left out), before any PRM training:

    python bench/bench_prm_base.py [--base smollm2-135m-instruct] [--problems 3000] [--seed 11]
    python bench/bench_prm_base.py --no-frozen --prm-steps 40 [--prm-problems 1000]

Input: `--problems` built-in arithmetic problems (difficulty 3-4, `--seed`), searched by `tree`
on the sim at error_rate 0.3 and exported with `export prm` (`bench_prm_steps.tree_rows`).
Each distinct working step (tree node) once; problems split into train and held-out by
`train_prm.held_out` (share 0.1, as `train --kind prm`); `--train` and `--test` steps of each.

- `lm`: the base's own log-probability of a step's result (the text after its last `=`) given
  the text before it, alone and after the question: no training, a diagnostic that reads the
  sim's step format. It says whether the base knows the arithmetic a PRM must check.
- `probe`: a logistic regression (L2, LBFGS in torch) on the frozen base's hidden state at the
  position a PRM reads (the last token of the separator after the step, `prm_inputs`, the step
  alone), per layer: what a frozen body with a trained linear head can reach.
- `--prm-steps N`: `train_prm` (what `train --kind prm --base` runs) from the base on the
  `export prm` rows of `--prm-problems` problems (same seed), whole paths, `PRM_BASE_TRAIN`
  with `max_steps` N; prints the metrics it reports (held-out share 0.1).
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from bench_prm_steps import tree_rows
from reasonfactory.generators.engines.prm import prm_inputs
from reasonfactory.generators.pulled_models import resolve_model
from reasonfactory.generators.train_prm import auroc, held_out
from reasonfactory.generators.verify.answers import extract_boxed

PRM_BASE_TRAIN = {"kind": "prm", "batch_size": 16, "learning_rate": 5e-5, "holdout": 0.1,
                  "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.1,
                  "logging_steps": 5}  # fmt: skip


def working_steps(rows: list[dict]) -> tuple[list, list]:
    """(question, step, label) of each distinct non-answer step: (train, held-out)."""
    seen, train, test = set(), [], []
    for r in rows:
        for node, step, ok in zip(r["node_ids"], r["completions"], r["labels"], strict=True):
            if (r["tree_id"], node) in seen or extract_boxed(step) is not None:
                continue
            seen.add((r["tree_id"], node))
            (test if held_out(r["problem_id"], 0.1) else train).append((r["prompt"], step, ok))
    return train, test


def split_auroc(scores, items) -> float:
    good = [float(s) for s, (_, _, ok) in zip(scores, items, strict=True) if ok]
    bad = [float(s) for s, (_, _, ok) in zip(scores, items, strict=True) if not ok]
    return round(auroc(good, bad), 4)


def result_logprob(model, tok, context: str, result: str) -> float:
    head = [tok.bos_token_id] + tok(context, add_special_tokens=False)["input_ids"]
    tail = tok(result, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + tail])
    logp = model(ids).logits[0, :-1].log_softmax(-1)
    picked = logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]]
    return float(picked[len(head) - 1 :].sum())


def separator_states(model, tok, items, layers: list[int]) -> dict[int, torch.Tensor]:
    out: dict[int, list] = {layer: [] for layer in layers}
    for start in range(0, len(items), 64):
        laid = [prm_inputs(tok, "", [step], "\n\n") for _, step, _ in items[start : start + 64]]
        width = max(len(ids) for ids, _ in laid)
        ids = torch.full((len(laid), width), tok.eos_token_id)
        mask = torch.zeros_like(ids)
        for i, (row, _) in enumerate(laid):
            ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        at = torch.tensor([positions[-1] for _, positions in laid])
        for layer in layers:
            out[layer].append(states.hidden_states[layer][torch.arange(len(laid)), at])
    return {layer: torch.cat(v) for layer, v in out.items()}


def probe(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor) -> torch.Tensor:
    mean, std = x.mean(0), x.std(0) + 1e-5
    x, x_test = (x - mean) / std, (x_test - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y)
        (loss + 1e-2 * (w * w).sum()).backward()
        return loss

    opt.step(closure)
    return (x_test @ w + b).detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="smollm2-135m-instruct", help="a pulled model or folder")
    ap.add_argument("--problems", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=600)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-frozen", action="store_true", help="skip the lm and probe figures")
    ap.add_argument("--prm-steps", type=int, default=0, help="train a PRM from the base (0: no)")
    ap.add_argument("--prm-problems", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_frozen:
        frozen(args)
    if args.prm_steps:
        train_from_base(args)


def train_from_base(args) -> None:
    import tempfile

    import datasets
    from reasonfactory.generators.train import TrainConfig
    from reasonfactory.generators.train_prm import train_prm

    started = time.perf_counter()
    rows = tree_rows(args.prm_problems, args.seed)
    settings = PRM_BASE_TRAIN | {"max_steps": args.prm_steps, "cpu_threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="rf-bench-prm-base-") as out:
        metrics = train_prm(datasets.Dataset.from_list(rows), ["tree rows"],
                            resolve_model(args.base), out, TrainConfig(**settings))  # fmt: skip
    print(f"{args.prm_problems} problems (builtin:arithmetic, difficulty 3-4, seed {args.seed}), "
          f"tree on the sim at error_rate 0.3: {len(rows)} paths; train_prm from {args.base} "
          f"{settings}")  # fmt: skip
    print("  PRM metrics: " + json.dumps(metrics))
    print(f"  seconds {time.perf_counter() - started:.0f}")


def frozen(args) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    train, test = working_steps(tree_rows(args.problems, args.seed))
    random.Random(0).shuffle(train)
    random.Random(0).shuffle(test)
    train, test = train[: args.train], test[: args.test]
    print(f"{args.problems} problems (builtin:arithmetic, difficulty 3-4, seed {args.seed}), tree "
          f"on the sim at error_rate 0.3: working steps {len(train)} train, {len(test)} held-out "
          f"({sum(not ok for *_, ok in test)} bad); base {args.base}")  # fmt: skip
    base = resolve_model(args.base)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    with torch.inference_mode():
        for name, with_question in (("step alone", False), ("question + step", True)):
            scores = []
            for question, step, _ in test:
                before, result = step.rsplit("=", 1)
                context = (question + "\n\n" if with_question else "") + before + "="
                scores.append(result_logprob(model, tok, context, result))
            print(f"  lm, {name}: auroc_steps {split_auroc(scores, test)}")
        layers = sorted(
            {*range(2, model.config.num_hidden_layers, 4), model.config.num_hidden_layers}
        )
        x, x_test = (
            separator_states(model, tok, train, layers),
            separator_states(model, tok, test, layers),
        )
    y = torch.tensor([float(ok) for *_, ok in train])
    for layer in layers:
        scores = probe(x[layer], y, x_test[layer]).tolist()
        print(f"  probe, layer {layer}: auroc_steps {split_auroc(scores, test)}")
    print(f"  seconds {time.perf_counter() - started:.0f}")


if __name__ == "__main__":
    main()
