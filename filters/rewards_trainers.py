"""The answer reward in the signatures verl and OpenRLHF call, for `export rl` rows.

Both trainers load a reward function from a file path, so this module is also that file:
- verl: `custom_reward_function.path=<this file> custom_reward_function.name=compute_score`
  on an `export rl --format verl` parquet; `compute_score(data_source, solution_str,
  ground_truth, extra_info)` reads the checker spec from `extra_info["checker"]`.
- OpenRLHF: `--remote_rm_url <this file> --label_key label` on an
  `export rl --format openrlhf` file; `reward_func(queries, prompts, labels)` reads gold and
  checker from the JSON `label` (a plain string label is taken as the gold).

Neither trainer takes "no reward": a completion the check cannot decide (no gold, an
unparseable gold, a check that timed out) scores 0.0 here, and OpenRLHF's `extra_logs`
count them (`undecided`). The rule is `rewards.answer_scores`, the `answer` filter's.
"""

from __future__ import annotations

import json

from reasonfactory.filters.rewards import answer_scores, completion_frame


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """verl's reward: 1.0 when the completion's answer is right, else 0.0 (undecided too).

    >>> compute_score("builtin:countdown", "<think>\\nok\\n</think>\\n\\n\\\\boxed{4 * 6}",
    ...               "24", {"checker": "countdown:4,6"})
    1.0
    """
    checker = (extra_info or {}).get("checker")
    [score] = answer_scores(completion_frame([solution_str], [ground_truth], [checker]))
    return score or 0.0


def read_label(label) -> tuple[str | None, str | None]:
    """(gold, checker) from an OpenRLHF label: `export rl`'s JSON, or a bare gold.

    >>> read_label('{"gold": "24", "checker": "countdown:4,6"}'), read_label("7")
    (('24', 'countdown:4,6'), ('7', None))
    """
    if isinstance(label, str) and label.startswith("{"):
        try:
            data = json.loads(label)
        except json.JSONDecodeError:
            return label, None
        if isinstance(data, dict) and "gold" in data:
            return data.get("gold"), data.get("checker")
    return (None if label is None else str(label)), None


def response_of(query: str, prompt: str) -> str:
    """The model's part of an OpenRLHF query (prompt + response)."""
    return query[len(prompt) :] if query.startswith(prompt) else query


def reward_func(queries, prompts, labels, **kwargs) -> dict:
    """OpenRLHF's reward: `rewards` and `scores` 1.0 right / 0.0 otherwise (a tensor when
    torch is there, as in OpenRLHF), `extra_logs` the share the check could not decide."""
    read = [read_label(label) for label in labels]
    responses = [response_of(q, p) for q, p in zip(queries, prompts, strict=True)]
    scores = answer_scores(completion_frame(responses, [g for g, _ in read], [c for _, c in read]))
    rewards = [s or 0.0 for s in scores]
    undecided = sum(s is None for s in scores) / max(1, len(scores))
    try:
        import torch
    except ImportError:  # the trainer has torch; a plain caller gets lists
        return {"rewards": rewards, "scores": rewards, "extra_logs": {"undecided": undecided}}
    tensor = torch.tensor(rewards, dtype=torch.float32)
    return {
        "rewards": tensor,
        "scores": tensor.clone(),
        "extra_logs": {"undecided": torch.tensor(undecided)},
    }
