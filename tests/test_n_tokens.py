"""`n_tokens` of sos and journey traces is a named approximation (UTF-8 bytes / 4, as the
length filter's), not the simulator's word counter, whatever the engine; the column says so."""

from __future__ import annotations

from reasonfactory.filters.length import APPROX
from reasonfactory.generators.base import RunContext, approx_tokens
from reasonfactory.generators.engines.sim import SimEngine, count_tokens
from reasonfactory.generators.methods.journey import JourneyConfig, journey
from reasonfactory.generators.methods.sos import SosConfig, sos
from reasonfactory.generators.problems.sources import load_problems
from reasonfactory.warehouse.schema import TRACES

CTX = RunContext("run", "fp", "sim")


def _check(traces) -> None:
    rows = [r for r in traces.iter_rows(named=True) if r["thought"]]
    assert rows
    for r in rows:
        assert r["n_tokens"] == approx_tokens(r["thought"], r["response"])
    # not the sim's word counter (the two differ on these texts)
    assert any(
        r["n_tokens"] != count_tokens(r["thought"]) + count_tokens(r["response"]) for r in rows
    )


def test_sos_n_tokens_is_the_named_approximation():
    out = sos(load_problems("builtin:countdown", limit=4), None, SosConfig(max_nodes=200), CTX)
    _check(out.traces)


def test_journey_n_tokens_is_the_named_approximation():
    problems = load_problems("builtin:arithmetic", limit=6, difficulty=(2, 4))
    out = journey(problems, SimEngine(), JourneyConfig(samples=4, keep_sources=False), CTX)
    _check(out.traces.filter(method="journey"))


def test_the_column_doc_names_the_approximation():
    doc = next(c.doc for c in TRACES.columns if c.name == "n_tokens")
    assert "sos and journey" in doc and APPROX in doc
