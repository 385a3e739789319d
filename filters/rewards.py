"""Reward functions for RL trainers, computed by the factory's own filters.

Each reward turns a batch of completions into a frame of the columns the filters read
(`generators.prompts.parse_completion` splits thought, response and answer, as generation
does; the gold and `checker` come from the `export rl` row) and calls the filter that judges
the same thing when data is made. Nothing here re-implements a rule, so a reward and the
filter's verdict on the same text agree (tests/test_rewards.py checks every stored trace of a
mixed run):
- `answer`: the `answer` filter (math-verify in the checker pool; Countdown, reasoning-gym
  and code problems by their checker; code runs its tests in the sandbox, all of a batch at
  once). 1.0 correct, 0.0 wrong or no answer, None when the check cannot decide
  (`UNDECIDED`: no gold, gold unparseable, a check that timed out or failed).
- `code`: the same as `answer` on code problems, None on the others.
- `format`: the `format` filter (one closed `<think>`, a thought, one boxed answer). 1.0 or 0.0.
- `steps`: the `steps` filter (every arithmetic claim of the thought holds). 1.0, 0.0 for a
  false step, None for a thought with no checkable claim (`no_claims`).
- `language`: DeepSeek-R1's language-consistency reward, the share of prose in the target
  language's script (1 - the `language` filter's `mixed`), 0.0 when lingua finds the
  thought or the response in another language.
- `weighted`: the weighted sum of the others over those that decide; None when none does.

TRL's `GRPOTrainer` takes None (it averages the other rewards of that completion); verl and
OpenRLHF need numbers, so `rewards_trainers.py` scores an undecided completion 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl
from reasonfactory.filters.answer import AnswerOptions, answer_filter
from reasonfactory.filters.format import FormatOptions, format_filter
from reasonfactory.filters.language import LanguageOptions, language_filter
from reasonfactory.filters.steps import StepsOptions, steps_filter
from reasonfactory.generators.prompts import parse_completion
from reasonfactory.generators.verify.checkers import is_code

Reward = float | None
# answer-filter reasons that are no verdict on the completion: the check could not decide
UNDECIDED = frozenset(
    {"gold_unparseable", "check_timeout", "check_error", "no_gold", "no_consensus"}
)


def completion_text(completion) -> str:
    """A completion as text: TRL gives a string, or chat messages for a chat prompt.

    >>> completion_text([{"role": "assistant", "content": "<think>x</think> 1"}])
    '<think>x</think> 1'
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion)


def completion_frame(
    completions: Sequence,
    gold: Sequence[str | None] | None = None,
    checker: Sequence[str | None] | None = None,
    finish_reason: Sequence[str | None] | None = None,
) -> pl.DataFrame:
    """The columns the filters read, for these completions of these problems."""
    n = len(completions)
    gold = list(gold) if gold is not None else [None] * n
    checker = list(checker) if checker is not None else [None] * n
    finish_reason = list(finish_reason) if finish_reason is not None else [None] * n
    if not len(gold) == len(checker) == len(finish_reason) == n:
        raise ValueError(
            f"{n} completions but {len(gold)} golds, {len(checker)} checkers and "
            f"{len(finish_reason)} finish reasons: give one per completion"
        )
    parsed = [
        parse_completion(completion_text(c), code=is_code(k))
        for c, k in zip(completions, checker, strict=True)
    ]
    return pl.DataFrame(
        {
            "thought": [p.thought for p in parsed],
            "response": [p.response for p in parsed],
            "predicted": [p.predicted for p in parsed],
            "think_closed": [p.think_closed for p in parsed],
            "finish_reason": finish_reason,
            "gold": gold,
            "gold_source": ["none" if g is None else "problem" for g in gold],
            "checker": checker,
        },
        schema={
            "thought": pl.String,
            "response": pl.String,
            "predicted": pl.String,
            "think_closed": pl.Boolean,
            "finish_reason": pl.String,
            "gold": pl.String,
            "gold_source": pl.String,
            "checker": pl.String,
        },
    )


def answer_scores(frame: pl.DataFrame, options: AnswerOptions | None = None) -> list[Reward]:
    """1.0 / 0.0 / None per row of a `completion_frame`, from the `answer` filter."""
    verdict = answer_filter(frame, options or AnswerOptions())
    return [
        None if r in UNDECIDED else (1.0 if ok else 0.0)
        for ok, r in zip(verdict["ok"], verdict["reason"], strict=True)
    ]


def format_scores(frame: pl.DataFrame, options: FormatOptions | None = None) -> list[Reward]:
    return [1.0 if ok else 0.0 for ok in format_filter(frame, options or FormatOptions())["ok"]]


def steps_scores(frame: pl.DataFrame, options: StepsOptions | None = None) -> list[Reward]:
    verdict = steps_filter(frame, options or StepsOptions())
    return [
        None if r == "no_claims" else (1.0 if ok else 0.0)
        for ok, r in zip(verdict["ok"], verdict["reason"], strict=True)
    ]


def language_scores(frame: pl.DataFrame, options: LanguageOptions | None = None) -> list[Reward]:
    verdict = language_filter(frame, options or LanguageOptions())
    mixed = verdict["detail"].struct.field("mixed").to_list()
    return [
        0.0 if r == "wrong_language" else round(1.0 - m, 4)
        for r, m in zip(verdict["reason"], mixed, strict=True)
    ]


class Rewards:
    """Reward functions with the filters' options (defaults: the filters' defaults).

    Each method is a TRL reward function, `f(completions, **kwargs) -> list[float | None]`;
    it reads the `gold` and `checker` columns of an `export rl --format trl` dataset from
    `kwargs` (TRL passes every dataset column) and ignores the rest.

    >>> r = Rewards(language={"lang": "en"})
    >>> r.format_reward(["<think>\\n2 + 2 = 4\\n</think>\\n\\n\\\\boxed{4}", "4"])
    [1.0, 0.0]
    """

    def __init__(
        self,
        answer: AnswerOptions | dict | None = None,
        format: FormatOptions | dict | None = None,  # the filter's name, as in recipes
        steps: StepsOptions | dict | None = None,
        language: LanguageOptions | dict | None = None,
    ):
        self.answer = AnswerOptions.model_validate(answer or {})
        self.format = FormatOptions.model_validate(format or {})
        self.steps = StepsOptions.model_validate(steps or {})
        self.language = LanguageOptions.model_validate(language or {})

    def answer_reward(self, completions, gold=None, checker=None, **kwargs) -> list[Reward]:
        """1.0 right, 0.0 wrong or no answer, None when the check cannot decide."""
        return answer_scores(completion_frame(completions, gold, checker), self.answer)

    def code_reward(self, completions, gold=None, checker=None, **kwargs) -> list[Reward]:
        """Code problems: 1.0 when the program passes every test (the sandbox), else 0.0;
        None for a problem that is not a code problem."""
        checker = checker if checker is not None else [None] * len(completions)
        rows = [i for i, c in enumerate(checker) if is_code(c)]
        out: list[Reward] = [None] * len(completions)
        if rows:
            pick = [completions[i] for i in rows]
            golds = [gold[i] if gold is not None else None for i in rows]
            frame = completion_frame(pick, golds, [checker[i] for i in rows])
            for i, score in zip(rows, answer_scores(frame, self.answer), strict=True):
                out[i] = score
        return out

    def format_reward(self, completions, checker=None, **kwargs) -> list[Reward]:
        """1.0 when the `format` filter keeps the completion, else 0.0."""
        return format_scores(completion_frame(completions, checker=checker), self.format)

    def steps_reward(self, completions, checker=None, **kwargs) -> list[Reward]:
        """1.0 every claim holds, 0.0 a false step, None when nothing could be checked."""
        return steps_scores(completion_frame(completions, checker=checker), self.steps)

    def language_reward(self, completions, checker=None, **kwargs) -> list[Reward]:
        """Share of prose in the target language's script; 0.0 for another language."""
        return language_scores(completion_frame(completions, checker=checker), self.language)

    def weighted(self, weights: dict[str, float]) -> Callable[..., list[Reward]]:
        """A TRL reward function: the weighted sum of the named rewards (`answer`, `code`,
        `format`, `steps`, `language`) over those that decide; None where none does.

        >>> Rewards().weighted({"format": 0.5})(["no think here"])
        [0.0]
        """
        unknown = set(weights) - set(REWARD_NAMES)
        if unknown:
            raise ValueError(
                f"unknown reward {sorted(unknown)[0]!r}; known: {', '.join(REWARD_NAMES)}"
            )
        parts = {name: getattr(self, f"{name}_reward") for name in weights}

        def weighted_reward(completions, **kwargs) -> list[Reward]:
            scores = {name: fn(completions, **kwargs) for name, fn in parts.items()}
            out: list[Reward] = []
            for i in range(len(completions)):
                decided = [(weights[n], s[i]) for n, s in scores.items() if s[i] is not None]
                out.append(sum(w * s for w, s in decided) if decided else None)
            return out

        return weighted_reward


REWARD_NAMES = ("answer", "code", "format", "steps", "language")
DEFAULT = Rewards()
answer_reward = DEFAULT.answer_reward
code_reward = DEFAULT.code_reward
format_reward = DEFAULT.format_reward
steps_reward = DEFAULT.steps_reward
language_reward = DEFAULT.language_reward
