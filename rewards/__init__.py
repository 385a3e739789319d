"""`reasonfactory.rewards`: the factory's verifiers as RL reward functions, one import away.

What a training script imports; the functions live where the layers put them (they call the
filters): `reasonfactory.filters.rewards` (TRL signatures, `Rewards` with filter options, the
weighted sum) and `reasonfactory.filters.rewards_trainers` (verl's `compute_score`,
OpenRLHF's `reward_func`). This package only re-exports them: nothing in the library imports
it (a layer of its own beside `flows`).

>>> from reasonfactory.rewards import answer_reward
>>> answer_reward(["<think>\\n2 + 2 = 4\\n</think>\\n\\n\\\\boxed{4}"], gold=["4"], checker=[None])
[1.0]
"""

from reasonfactory.filters.rewards import (
    REWARD_NAMES,
    UNDECIDED,
    Rewards,
    answer_reward,
    code_reward,
    format_reward,
    language_reward,
    steps_reward,
)
from reasonfactory.filters.rewards_trainers import compute_score, reward_func

__all__ = [
    "REWARD_NAMES",
    "UNDECIDED",
    "Rewards",
    "answer_reward",
    "code_reward",
    "compute_score",
    "format_reward",
    "language_reward",
    "reward_func",
    "steps_reward",
]
