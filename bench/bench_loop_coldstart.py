"""Why is the loop's cold start weak on two- and three-operation arithmetic? One cold start,
measured as it trains.

Input: the loop's own pieces at `--seed-set` / `--held-out` sizes: the pools of
`examples/loop-arithmetic.yaml`'s family and difficulty (`make_pools`), the sim teacher's
greedy traces of the seed set (error rate 0, what the loop's `cold:distill` keeps), the
student built from scratch (`build_student`, `--hidden`, `--layers`) and trained with TRL's
`SFTTrainer` with the loop's training settings (`TrainConfig`, cosine over `--steps`). Every
`--every` steps it prints, on the held-out problems and on as many seed problems:

- the loss per answer token on the teacher's traces (seed traces against held-out
  reference traces: far apart = memorising, close and high = under-trained);
- greedy pass@1, decoded with transformers' `generate` (not vLLM: the same greedy decoding
  without an engine start per point; the loop's figures come from bench/bench_loop.py);
- where the held-out steps go wrong: of the steps written, the share whose operands are the
  right ones (the plan: the right numbers copied from the question and carried from the
  step before) and, of those, the share whose result is right (the arithmetic).

    python bench/bench_loop_coldstart.py [--seed-set 1000] [--steps 1200] [--every 150]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from fractions import Fraction
from pathlib import Path

_STEP = re.compile(r"Step (\d+): (\(?-?[\d/]+\)?) ([-+*/]) (\(?-?[\d/]+\)?) = (-?[\d/]+)\.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-set", type=int, default=1000)
    ap.add_argument("--held-out", type=int, default=150)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--difficulty", type=int, nargs=2, default=[2, 3])
    ap.add_argument("--learning-rate", type=float, default=3e-3)
    ap.add_argument("--train-seed", type=int, default=0, help="the student's init and data order")
    ap.add_argument("--show", type=int, default=3, help="held-out replies shown at the end")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from reasonfactory.flows.loop_config import LoopConfig, make_pools
    from reasonfactory.generators.engines.base import GenRequest
    from reasonfactory.generators.engines.sim import SimEngine
    from reasonfactory.generators.prompts import build_messages
    from reasonfactory.generators.student import StudentShape, build_student
    from reasonfactory.generators.train import TrainConfig, _trainer_args
    from reasonfactory.generators.trainers import log_to_logger
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTTrainer

    torch.set_num_threads(1)  # the loop's training setting (TrainConfig.cpu_threads)
    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    cfg = LoopConfig(
        name="coldstart",
        rounds=0,
        problems={
            "seed_set": args.seed_set,
            "held_out": args.held_out,
            "per_round": 1,
            "difficulty": args.difficulty,
        },
    )
    pools = make_pools(cfg)
    teacher = SimEngine(error_rate=0.0)

    def traced(problems):
        chats = []
        for q in problems:
            messages = build_messages(q.question)
            [c] = teacher.generate([GenRequest(messages=messages, seed=0, temperature=0.0)])[0]
            chats.append([*messages, {"role": "assistant", "content": c.text}])
        return chats

    import datasets

    seed_chats, held_chats = traced(pools["seed"]), traced(pools["heldout"])
    dataset = datasets.Dataset.from_dict({"messages": seed_chats})
    shape = StudentShape(hidden_size=args.hidden, num_hidden_layers=args.layers,
                         intermediate_size=4 * args.hidden)  # fmt: skip
    build_student(work / "student", shape, seed=args.train_seed)
    tok = AutoTokenizer.from_pretrained(work / "student")
    model = AutoModelForCausalLM.from_pretrained(work / "student", dtype=torch.float32)
    params = sum(p.numel() for p in model.parameters())
    config = TrainConfig(
        max_steps=args.steps, learning_rate=args.learning_rate, seed=args.train_seed
    )
    print(
        f"{len(seed_chats)} seed traces, {len(held_chats)} held-out problems, difficulty "
        f"{tuple(args.difficulty)}; student hidden {args.hidden}, {args.layers} layers, "
        f"{params:,} parameters; {args.steps} steps x {config.batch_size}, lr "
        f"{config.learning_rate} cosine, training seed {args.train_seed}"
    )
    seed_sample = pools["seed"][: len(pools["heldout"])]
    header = (
        f"{'step':>5} {'epochs':>6} {'loss seed':>9} {'held-out':>8}  {'pass@1 seed':>11} "
        f"{'held-out':>8}  held-out steps: right operands, of those right results"
    )

    class Measure(TrainerCallback):
        started = time.perf_counter()

        def on_step_end(self, _args, state, control, **kw):
            if state.global_step % args.every and state.global_step != args.steps:
                return
            model.eval()
            seed_loss = answer_loss(model, tok, seed_chats[: len(held_chats)])
            held_loss = answer_loss(model, tok, held_chats)
            seed_pass, _, _ = solve(model, tok, seed_sample)
            held_pass, steps, replies = solve(model, tok, pools["heldout"])
            model.train()
            copied = sum(s[0] for s in steps)
            right = sum(s[0] and s[1] for s in steps)
            epochs = state.global_step * config.batch_size / len(seed_chats)
            print(
                f"{state.global_step:>5} {epochs:>6.1f} {seed_loss:>9.3f} {held_loss:>8.3f}  "
                f"{100 * seed_pass:>10.1f}% {100 * held_pass:>7.1f}%  "
                f"{pct(copied, len(steps))} of {len(steps)}, {pct(right, copied)}  "
                f"[{(time.perf_counter() - self.started) / 60:.1f} min]",
                flush=True,
            )
            Measure.replies = replies

    print(header, flush=True)
    trainer = SFTTrainer(
        model=model,
        args=_trainer_args(config, work / ".trainer", use_cpu=True),
        train_dataset=dataset,
        processing_class=tok,
    )
    log_to_logger(trainer)  # its log dicts to a logger, not between these lines
    trainer.add_callback(Measure())
    trainer.train()
    for q, reply in list(zip(pools["heldout"], Measure.replies, strict=True))[: args.show]:
        print(f"  {q.question} (gold {q.gold}): {' '.join(reply.split())}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def answer_loss(model, tok, chats) -> float:
    """Mean loss per assistant token over the chats (the student's template marks them)."""
    import torch

    total, count = 0.0, 0
    for messages in chats:
        enc = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
        ids = torch.tensor([enc["input_ids"]])
        mask = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
        total, count = total + float(nll[mask].sum()), count + int(mask.sum())
    return total / max(count, 1)


def solve(model, tok, problems) -> tuple[float, list[tuple[bool, bool]], list[str]]:
    """Greedy pass@1 over the problems; per written step (operands right, result right)."""
    import torch
    from reasonfactory.generators.prompts import build_messages
    from reasonfactory.generators.verify.answer import Outcome, check_answer
    from reasonfactory.generators.verify.answers import extract_boxed

    tok.padding_side = "left"
    prompts = [
        tok.apply_chat_template(build_messages(q.question), tokenize=False) for q in problems
    ]
    replies = []
    for i in range(0, len(prompts), 64):
        enc = tok(prompts[i : i + 64], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=128, do_sample=False, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )  # fmt: skip
        replies += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    right, steps = 0, []
    for q, reply in zip(problems, replies, strict=True):
        answer = extract_boxed(reply.split("</think>")[-1])
        right += answer is not None and check_answer(q.gold, answer) is Outcome.CORRECT
        steps += step_checks(q.question, reply)
    return right / len(problems), steps, replies


def step_checks(question: str, reply: str) -> list[tuple[bool, bool]]:
    """Each written step of a left-nested `Compute ((a op b) op c) op d.`: are its operands
    the plan's (the question's numbers, and the right value carried from the step before),
    and is its result the right value of what it wrote?

    >>> step_checks("Compute (17 + 5) * 3.", "Step 1: 17 + 5 = 22.\\n\\nStep 2: 22 * 4 = 88.")
    [(True, True), (False, True)]
    """
    expr = re.match(r"Compute (.+)\.$", question).group(1)
    first = Fraction(re.search(r"\d+", expr).group())
    plan = [(op, Fraction(n)) for op, n in re.findall(r"([-+*/]) (\d+)", expr)]
    value, out = first, []
    for m in _STEP.finditer(reply):
        k = int(m.group(1)) - 1
        lhs, op, rhs, result = (
            number(m.group(2)), m.group(3), number(m.group(4)), number(m.group(5))
        )  # fmt: skip
        if k >= len(plan) or None in (lhs, rhs, result):
            out.append((False, False))
            continue
        plan_op, operand = plan[k]
        if k == 0:
            value = first
        ok_operands = (lhs, op, rhs) == (value, plan_op, operand)
        computed = apply(op, lhs, rhs)
        out.append((ok_operands, computed is not None and computed == result))
        value = apply(plan_op, value, operand)
    return out


def number(text: str) -> Fraction | None:
    try:
        return Fraction(text.strip("()"))
    except (ValueError, ZeroDivisionError):
        return None


def apply(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    if op == "/" and b == 0:
        return None
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]


if __name__ == "__main__":
    main()
