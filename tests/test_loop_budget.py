"""The compare arms' budget (flows/loop_stages.py `generate_within_budget`) through the real
generate flow, the sim engine and real DuckDB files: completion tokens used are counted from
the warehouse's `progress` rows, so an arm served from the completions table spends what it
would have generated, and a chunk killed half way and resumed counts the whole chunk.

No vLLM: the sim engine stands in for the student (what is measured is bookkeeping, not the
text). tests/test_loop.py runs the same stages end to end with a trained student.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from unittest.mock import patch

import pytest
from reasonfactory.flows.committer import Committer
from reasonfactory.flows.loop_config import CompareBudget, LoopConfig
from reasonfactory.flows.loop_ledger import Chunk, Ledger
from reasonfactory.flows.loop_stages import generate, generate_within_budget
from reasonfactory.flows.loop_tables import compare_table
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.warehouse.store import Warehouse

SPEC = CompareBudget(tolerance=0.1, first_chunk=5)
QUESTIONS = [p.question for p in make_problems("arithmetic", 40, seed=3, difficulty=(1, 3))]


def pool(tmp_path, name: str, questions: list[str]) -> str:
    """A problem file without answers, as the loop writes a round's pool."""
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions))
    return str(path)


def recipe(source: str, limit: int | None = None, samples: int = 2, **generate):
    problems = {"source": source} if limit is None else {"source": source, "limit": limit}
    return parse_recipe(
        {
            "name": "arm",
            "problems": problems,
            "engine": {"kind": "sim", "error_rate": 0.3},
            "generate": {
                "method": "self_output",
                "samples": samples,
                "temperature": 0.8,
                "shard_size": 5,
                **generate,
            },
            "filters": ["format", "steps", "dedup"],
        }
    )


def arm(tmp_path, name: str, warehouse, source: str, budget: int, samples: int = 2, n=None):
    ledger = Ledger(tmp_path / name)
    ledger.path.parent.mkdir(exist_ok=True)
    made = generate_within_budget(
        ledger, "cmp:arm:generate", partial(recipe, source, samples=samples), warehouse,
        n or len(QUESTIONS), budget, SPEC,
    )  # fmt: skip
    return made, Ledger(tmp_path / name)


def spent(warehouse, run_id: str) -> tuple[int, int]:
    with Warehouse(warehouse, read_only=True) as wh:
        return wh.sql(
            "SELECT sum(tokens_generated)::BIGINT, sum(tokens_reused)::BIGINT FROM progress "
            "WHERE run_id = ?",
            [run_id],
        ).row(0)


def limits(ledger: Ledger) -> list[int]:
    return [r.limit for r in ledger.results.values() if isinstance(r, Chunk)]


@pytest.fixture
def earlier(prefect_api, tmp_path):
    """An earlier run on the arms' pool with the arms' sampling (another selection makes it
    another run, as another vote makes the example's `majority` arm to `steps`): every
    sample an arm asks for is stored. The arms' budget is half what it used."""
    warehouse = tmp_path / "served.duckdb"
    source = pool(tmp_path, "round-compare", QUESTIONS)
    made = generate(recipe(source, selection={"by": "confidence"}), warehouse)
    assert made.problems == 40 and made.tokens_reused == 0 and made.tokens_generated > 0
    return warehouse, made, made.tokens_used // 2


def test_an_arm_served_from_the_store_spends_what_it_would_have_generated(earlier, tmp_path):
    served_wh, _, budget = earlier
    source = pool(tmp_path, "round-compare", QUESTIONS)
    served, served_ledger = arm(tmp_path, "served", served_wh, source, budget)
    fresh, fresh_ledger = arm(tmp_path, "fresh", tmp_path / "fresh.duckdb", source, budget)
    # the earlier run's sampling: every sample came from the completions table
    assert served.tokens_generated == 0 and served.tokens_reused > 0
    assert fresh.tokens_reused == 0 and fresh.tokens_generated > 0
    assert served.tokens_used == fresh.tokens_used
    assert limits(served_ledger) == limits(fresh_ledger)
    assert (served.problems, served.traces, served.kept) == (
        fresh.problems, fresh.traces, fresh.kept
    )  # fmt: skip
    # it stopped at the budget, not at the end of the pool
    assert served.problems < 40 and abs(served.tokens_used - budget) <= SPEC.tolerance * budget
    assert spent(served_wh, served.run_id) == (0, served.tokens_used)


def test_a_chunk_killed_half_way_and_resumed_counts_the_whole_chunk(earlier, tmp_path):
    _, _, budget = earlier
    source = pool(tmp_path, "round-compare", QUESTIONS)
    whole, whole_ledger = arm(tmp_path, "whole", tmp_path / "whole.duckdb", source, budget)
    assert len(limits(whole_ledger)) >= 2 and limits(whole_ledger)[1] - limits(whole_ledger)[0] > 5

    real, calls = Committer.add, []

    def killed_in_chunk_two(self, result):
        real(self, result)
        calls.append(result.problems.height)
        if len(calls) == 2:  # chunk 1 is one shard of 5; chunk 2's first shard is stored
            raise RuntimeError("killed")

    warehouse = tmp_path / "killed.duckdb"
    with patch.object(Committer, "add", killed_in_chunk_two), pytest.raises(RuntimeError):
        arm(tmp_path, "killed", warehouse, source, budget)
    assert limits(Ledger(tmp_path / "killed")) == limits(whole_ledger)[:1]
    resumed, ledger = arm(tmp_path, "killed", warehouse, source, budget)
    assert limits(ledger) == limits(whole_ledger)
    assert resumed.tokens_used == whole.tokens_used
    assert (resumed.problems, resumed.traces, resumed.kept) == (
        whole.problems, whole.traces, whole.kept
    )  # fmt: skip


def test_the_budget_ratio_is_tokens_used_over_round_ones_from_the_warehouse(earlier, tmp_path):
    warehouse, made, _ = earlier  # round 1, as far as the table is concerned
    config = LoopConfig(
        name="t",
        generate={"method": "self_output", "samples": 2},
        compare={"single": {"generate": {}}, "short": {"generate": {}}},
        compare_budget=SPEC,
    )
    ledger = Ledger(tmp_path)
    ledger.once("r1:generate", lambda: made)
    budget = made.tokens_used  # the default: what round 1 used
    extra = [p.question for p in make_problems("arithmetic", 140, seed=4, difficulty=(1, 3))]
    sources = {
        "single": pool(tmp_path, "round-single", QUESTIONS + extra[:100]),
        "short": pool(tmp_path, "round-short", QUESTIONS[:8]),  # ends before its budget
    }
    for name, source in sources.items():
        n = len(Path(source).read_text().splitlines())
        ledger.once(
            f"cmp:{name}:generate", generate_within_budget, ledger, f"cmp:{name}:generate",
            partial(recipe, source, samples=1), warehouse, n, budget, SPEC,
        )  # fmt: skip
    rows = {r["arm"]: r for r in compare_table(ledger, config)}
    round1_used = sum(spent(warehouse, made.run_id))
    for name in ("single", "short"):
        used = sum(spent(warehouse, rows[name]["run_id"]))
        assert rows[name]["tokens_used"] == used
        assert rows[name]["budget_ratio"] == round(used / round1_used, 3)
    # one sample a problem: about twice round 1's problems for the same tokens, within 10%
    assert abs(rows["single"]["budget_ratio"] - 1) <= SPEC.tolerance
    assert rows["single"]["problems"] > 60
    assert rows["short"]["problems"] == 8 and rows["short"]["budget_ratio"] < 0.5
    assert rows["control (seed only)"]["tokens_used"] is None
