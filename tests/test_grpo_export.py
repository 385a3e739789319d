"""`export rl --format trl` trains with TRL's `GRPOTrainer` and our reward functions.

A tiny random Llama (tests/tiny_models.py) samples completions for the exported prompts and
TRL calls `answer_reward` and `format_reward` with the dataset's other columns as keyword
arguments, as it would in a real run. The model has learned nothing, so what is checked is
the plumbing: two optimizer steps, both rewards logged, and every reward TRL logged is what
our function gives for that completion and its problem's gold and checker.
"""

from __future__ import annotations

import math

import pytest
from reasonfactory.generators.rl_rows import export_rl
from reasonfactory.rewards import answer_reward, format_reward
from tiny_models import build_tiny_causal_lm, tiny_training_args


@pytest.mark.slow
def test_grpo_trains_two_steps_on_the_trl_export(rl_warehouse, tmp_path):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    out = tmp_path / "rl"
    result = export_rl(rl_warehouse, out, fmt="trl", where="source = 'builtin:arithmetic'")
    train = datasets.load_from_disk(str(out))
    assert train.num_rows == result["rows"] > 0
    assert {"prompt", "gold", "checker", "pass_rate", "n_samples"} <= set(train.column_names)
    corpus = [m["content"] for row in train["prompt"] for m in row]
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-lm", corpus)
    config = tiny_training_args(
        GRPOConfig,
        tmp_path / "run",
        None,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        beta=0.0,
        log_completions=False,
    )
    calls: list = []
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=[recorded(answer_reward, calls), recorded(format_reward, calls)],
        args=config,
        train_dataset=train,
    )
    trainer.train()

    assert trainer.state.global_step == 2
    logged = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logged) == 2 and all(math.isfinite(log["loss"]) for log in logged)
    for name in ("answer_reward", "format_reward"):
        assert all(f"rewards/{name}/mean" in log for log in logged), logged
    # TRL called our functions with each completion's own problem columns, and logged
    # what they returned
    assert {name for name, *_ in calls} == {"answer_reward", "format_reward"}
    by_prompt = {row["prompt"][-1]["content"]: row for row in train}
    means = {}
    for name, prompts, completions, kwargs, scores in calls:
        assert len(prompts) == len(completions) == len(scores) == 2
        for i, prompt in enumerate(prompts):
            row = by_prompt[prompt[-1]["content"]]
            assert (kwargs["gold"][i], kwargs["checker"][i]) == (row["gold"], row["checker"])
            assert kwargs["pass_rate"][i] == row["pass_rate"]
            assert completions[i][0]["role"] == "assistant"
        assert all(s in (0.0, 1.0) for s in scores)  # a gold every problem has: decided
        means.setdefault(name, []).append(sum(scores) / len(scores))
    for name, values in means.items():
        assert [float(log[f"rewards/{name}/mean"]) for log in logged] == pytest.approx(values)


def recorded(fn, calls: list):
    """`fn` as TRL sees it (same name and result), keeping what TRL passed and got back."""

    def reward(completions, prompts=None, **kwargs):
        scores = fn(completions, **kwargs)
        calls.append((fn.__name__, prompts, completions, kwargs, scores))
        return scores

    reward.__name__ = fn.__name__
    return reward
