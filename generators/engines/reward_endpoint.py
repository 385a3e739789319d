"""A reward model behind an OpenAI-compatible server's `/classify` endpoint, for `best_of_n`.

`vllm serve RM --runner pooling` with a sequence-classification reward model answers
`POST /classify` with one probability per class for a chat; the first class's is the reward.
`EndpointScorer.score` sends one chat per (question, completion) pair through an
`OpenAIEngine` (`post_each`: the same retries, timeouts and concurrency as generation) and
returns the rewards in order. The offline twin is `vllm.VllmRewardModel`.

Not here: HTTP itself (`openai.py`), choosing a sample by its reward (`methods/selection.py`).
"""

from __future__ import annotations

from reasonfactory.generators.engines.openai import OpenAIEngine
from reasonfactory.warehouse.errors import UserError


class EndpointScorer:
    """A reward model behind an OpenAI-compatible server's `/classify` endpoint (vllm serve
    with a sequence-classification reward model): one chat per (question, completion) pair,
    the first class's output is the reward. Same retries and concurrency as the engine.

    >>> EndpointScorer("rm", "http://127.0.0.1:8000/v1").score([("1 + 1?", "2")])  # doctest: +SKIP
    [0.97]
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 6,
    ):
        # vLLM serves /classify beside /v1, not under it.
        self.engine = OpenAIEngine(
            model,
            base_url=base_url.rstrip("/").removesuffix("/v1"),
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
        )

    @classmethod
    def from_config(cls, config) -> EndpointScorer:
        return cls(
            config.model,
            config.base_url,
            api_key_env=config.api_key_env,
            concurrency=config.concurrency,
            timeout=config.timeout,
            max_retries=config.max_retries,
        )

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        bodies = [
            {
                "model": self.engine.model,
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": text},
                ],
            }
            for question, text in pairs
        ]
        try:
            replies = self.engine.post_each("/classify", bodies)
        except UserError as exc:
            raise UserError(f"verifier endpoint {exc}") from None
        return [float(out["data"][0]["probs"][0]) for out in replies]
