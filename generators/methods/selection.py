"""Selection among a problem's samples: `majority`, `confidence` or `best_of_n`.

When several samples of one problem agree or disagree, a selection scores each one, picks one,
and (when the problem has no gold answer) lets the picked answer stand in for the gold:
- `majority` (self-consistency, Wang et al. 2022): a sample's value is the vote share of its
  answer; the majority answer stands in for the gold if its share reaches `min_agreement`.
- `confidence` (as in "Chain-of-Thought Reasoning Without Prompting", Wang & Zhou 2024): a
  sample's value is its mean token log-probability; the most confident answer is picked.
  Samples the engine returned no log-probabilities for have no value and are never picked.
- `best_of_n`: a verifier scores every sample and the best one is picked. Verifiers: `rules`
  (format and answer checks: 1 if the sample is well formed and its answer matches the gold,
  or the majority answer when there is none, else 0), `reward_model` (a reward model run by
  offline vLLM, `generators.engines.vllm`), `endpoint` (an OpenAI-compatible `/classify`
  scoring endpoint, e.g. `vllm serve RM --runner pooling`, `generators.engines.reward_endpoint`),
  `prm` (a PRM `train --kind prm` wrote, `generators.engines.prm`: the sample's steps scored
  and aggregated by `aggregate`).
Ties go to the more confident sample, then the earlier one. The choice is recorded in each
trace's `meta.selection` (`by`, `value`, `rank`, `selected`, `verifier`); the `selected`
filter keeps only the picked sample per problem.

Pure functions over parsed samples, except the reward verifiers, which run a model.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import Field
from reasonfactory.generators.base import StrictModel
from reasonfactory.generators.engines.base import Completion
from reasonfactory.generators.engines.prm import PrmConfig
from reasonfactory.generators.prompts import ParsedCompletion
from reasonfactory.generators.verify.answers import answer_key, count_boxed


class RulesVerifier(StrictModel):
    kind: Literal["rules"] = "rules"


class RewardModelVerifier(StrictModel):
    """A reward model (a sequence classifier with one label) run by offline vLLM."""

    kind: Literal["reward_model"] = "reward_model"
    model: str
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=16)
    gpu_memory_utilization: float = Field(0.2, gt=0, le=1)
    engine_args: dict = Field(default_factory=dict)


class EndpointVerifier(StrictModel):
    """An OpenAI-compatible scoring endpoint: `POST {base_url}/classify` (vllm serve)."""

    kind: Literal["endpoint"] = "endpoint"
    model: str
    base_url: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(32, ge=1)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)


VerifierConfig = Annotated[
    RulesVerifier | RewardModelVerifier | EndpointVerifier | PrmConfig,
    Field(discriminator="kind"),
]


class SelectionConfig(StrictModel):
    by: Literal["majority", "confidence", "best_of_n"] = "majority"
    verifier: VerifierConfig = RulesVerifier()


class Scorer(Protocol):
    """Scores (question, completion text) pairs; higher is better."""

    def score(self, pairs: list[tuple[str, str]]) -> list[float]: ...


@dataclass(frozen=True)
class Sample:
    parsed: ParsedCompletion
    finish_reason: str
    n_tokens: int
    cumulative_logprob: float | None
    reward: float | None = None  # best_of_n with a model verifier

    @property
    def usable(self) -> bool:
        return self.finish_reason != "error"


@dataclass(frozen=True)
class Choice:
    """A problem's selection: per sample its value, score, rank and whether it was picked;
    the gold the samples are checked against and where it came from."""

    values: list[float | None]
    scores: list[float]
    ranks: list[int | None]
    selected: int | None
    gold: str | None
    gold_source: str
    majority: tuple[str | None, float]


def mean_logprob(s: Sample) -> float | None:
    """Mean token log-probability of a sample, or None without logprobs."""
    if s.cumulative_logprob is None or s.n_tokens <= 0:
        return None
    return s.cumulative_logprob / s.n_tokens


def rules_reward(s: Sample, gold: str | None, majority_key: str | None) -> float:
    """1 if well formed (closed thought, one boxed answer, not cut off) and right, else 0; a
    code problem's sample carries its reward already (the share of tests its program passed,
    0 when it is not well formed: `code_pass_rates`, run for a whole shard at once)."""
    if s.reward is not None:
        return s.reward
    p = s.parsed
    if s.finish_reason != "stop" or not p.think_closed or count_boxed(p.response) != 1:
        return 0.0
    if gold is not None:
        from reasonfactory.generators.verify.answer import (  # math-verify, guarded
            Outcome,
            check_answer,
        )

        return 1.0 if check_answer(gold, p.predicted) is Outcome.CORRECT else 0.0
    return 1.0 if majority_key is not None and answer_key(p.predicted) == majority_key else 0.0


def choose(
    samples: list[Sample], gold: str | None, config: SelectionConfig, min_agreement: float
) -> Choice:
    """Score, rank and pick among one problem's samples.

    >>> from reasonfactory.generators.prompts import parse_completion
    >>> p = lambda a: parse_completion(f"<think>x</think> \\\\boxed{{{a}}}")
    >>> mk = lambda a, lp: Sample(p(a), "stop", 4, lp)
    >>> c = choose([mk("1", -4.0), mk("2", -0.4), mk("1", -2.0)], None, SelectionConfig(), 0.5)
    >>> c.gold, c.selected, [round(v, 2) for v in c.values]
    ('1', 2, [0.67, 0.33, 0.67])
    >>> choose([mk("1", -4.0), mk("2", -0.4)], None, SelectionConfig(by="confidence"), 0.5).gold
    '2'
    """
    keys = [answer_key(s.parsed.predicted) if s.usable else None for s in samples]
    votes = Counter(k for k in keys if k is not None)
    majority_key, majority = None, (None, 0.0)
    if votes:
        majority_key, count = votes.most_common(1)[0]
        shown = next(
            s.parsed.predicted for s, k in zip(samples, keys, strict=True) if k == majority_key
        )
        majority = (shown, count / len(samples))
    confidence = [mean_logprob(s) if s.usable else None for s in samples]

    if config.by == "majority":
        values = [votes[k] / len(samples) if k is not None else 0.0 for k in keys]
        scores = list(values)
    elif config.by == "confidence":
        values = confidence
        scores = [math.exp(v) if v is not None else 0.0 for v in values]
    else:
        if isinstance(config.verifier, RulesVerifier):
            values = [rules_reward(s, gold, majority_key) if s.usable else None for s in samples]
        else:
            values = [s.reward if s.usable else None for s in samples]
        scores = [v if v is not None else 0.0 for v in values]

    order = sorted(
        (i for i, v in enumerate(values) if v is not None and keys[i] is not None),
        key=lambda i: (-values[i], -(confidence[i] if confidence[i] is not None else -math.inf), i),
    )
    if config.by == "majority":  # the first sample carrying the majority answer, ties by confidence
        order = [i for i in order if keys[i] == majority_key] + [
            i for i in order if keys[i] != majority_key
        ]
    ranks: list[int | None] = [None] * len(samples)
    for r, i in enumerate(order):
        ranks[i] = r
    selected = order[0] if order else None

    if gold is not None:
        gold_out, source = gold, "problem"
    elif config.by == "majority":
        ok = majority[0] is not None and majority[1] >= min_agreement
        gold_out, source = (majority[0], "majority") if ok else (None, "none")
    elif selected is not None and (config.by == "confidence" or scores[selected] > 0):
        gold_out, source = samples[selected].parsed.predicted, config.by
    else:
        gold_out, source = None, "none"
    return Choice(values, scores, ranks, selected, gold_out, source, majority)


_SCORERS: dict[str, Scorer] = {}


def scorer_for(verifier: RewardModelVerifier | EndpointVerifier | PrmConfig) -> Scorer:
    """The verifier's model, built once per process (a reward model takes a while to load)."""
    key = verifier.model_dump_json()
    if key not in _SCORERS:
        if isinstance(verifier, PrmConfig):  # a PRM: the sample's steps scored, aggregated
            from reasonfactory.generators.engines.prm import PrmPairScorer, prm_for

            _SCORERS[key] = PrmPairScorer(prm_for(verifier), verifier.aggregate)
        elif isinstance(verifier, RewardModelVerifier):
            from reasonfactory.generators.engines.vllm import VllmRewardModel

            _SCORERS[key] = VllmRewardModel.from_config(verifier)
        else:
            from reasonfactory.generators.engines.reward_endpoint import EndpointScorer

            _SCORERS[key] = EndpointScorer.from_config(verifier)
    return _SCORERS[key]


def rewards_for(config: SelectionConfig, pairs: list[tuple[str, str]]) -> list[float | None]:
    """Model rewards for (question, completion) pairs when the selection needs them."""
    if config.by != "best_of_n" or isinstance(config.verifier, RulesVerifier) or not pairs:
        return [None] * len(pairs)
    return list(scorer_for(config.verifier).score(pairs))


def code_pass_rates(
    items: list[tuple[object, Completion, ParsedCompletion]],
) -> list[float]:
    """The `rules` reward of code samples, `(tests, completion, parsed)`: the share of the
    tests its program passes (all programs of the shard in one sandboxed batch), 0 for a
    sample cut off or with an unclosed thought."""
    from reasonfactory.generators.verify.code_tests import verify_many

    runnable = [
        i for i, (_, c, p) in enumerate(items) if c.finish_reason == "stop" and p.think_closed
    ]
    verdicts = verify_many([(items[i][0], items[i][2].response) for i in runnable])
    rates = [0.0] * len(items)
    for i, verdict in zip(runnable, verdicts, strict=True):
        rates[i] = verdict.pass_rate
    return rates


def full_text(c: Completion) -> str:
    """A completion as a reward model reads it: the thinking inline, then the answer."""
    if c.reasoning is None:
        return c.text
    return f"<think>\n{c.reasoning}\n</think>\n\n{c.text}"


def selection_meta(config: SelectionConfig, choice: Choice, i: int) -> dict:
    meta = {
        "by": config.by,
        "value": choice.values[i],
        "rank": choice.ranks[i],
        "selected": choice.selected == i,
    }
    if config.by == "best_of_n":
        meta["verifier"] = config.verifier.kind
    return meta
