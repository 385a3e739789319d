"""pass@k: the unbiased estimator agrees with exhaustive counting."""

from __future__ import annotations

import itertools
import random

import pytest
from reasonfactory.warehouse.stats import pass_at_k


@pytest.mark.parametrize(
    "n,c,k", [(5, 2, 1), (5, 2, 2), (6, 1, 3), (6, 0, 2), (6, 6, 4), (7, 3, 7)]
)
def test_pass_at_k_matches_enumeration(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    exact = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(exact)


def test_pass_at_k_is_monotone_in_k_and_large_n_is_stable():
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 300)
        c = rng.randint(0, n)
        values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
        assert all(0 <= v <= 1 for v in values)
        assert values == sorted(values)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
