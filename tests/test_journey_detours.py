"""A journey detour's wrong step carries its wrong value through its own conclusion.

Measured over every kept detour of real runs of README's `linear-journey` recipe (500
problems, sim engine at error rate 0.2, one detour, four base samples), through the flow into
DuckDB, on `builtin:linear` and `builtin:arithmetic`, `from: inject` and `from: tree`, in
English and Chinese. A wrong step that says the right value right after the wrong one
("Divide both sides by 8: 64 / 8 = -8, so x = 8") never acts on its error: the detour
teaches nothing. The steps are read with the project's claim reader
(`journey_checks.restated_right_value`), not with patterns of the generator's output.
Before the fix 388 of the 474 detours of `journey-linear-inject-en` did.
Run with `-s` to see the count per run.
"""

from __future__ import annotations

import pytest
from journey_checks import check_journey, restated_right_value
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.store import Warehouse

RUNS = [
    (source, origin, language)
    for source in ("builtin:linear", "builtin:arithmetic")
    for origin in ("inject", "tree")
    for language in ("en", "zh")
]


def readme_recipe(source: str, origin: str, language: str) -> dict:
    """README's journey recipe, on `source`, from `origin`, in `language`."""
    engine = {"kind": "sim", "error_rate": 0.2}
    if language == "zh":
        engine["language"] = "zh"  # README: Chinese journeys need Chinese steps
    return {
        "name": f"journey-{source.split(':')[1]}-{origin}-{language}",
        "problems": {"source": source, "limit": 500},
        "engine": engine,
        "generate": {
            "method": "journey",
            "from": origin,
            "detours": 1,
            "language": language,
            "samples": 4,
        },
    }


@pytest.fixture(scope="module")
def detours(prefect_api, tmp_path_factory):
    """(recipe name, trace row, error record) for every detour of every kept journey."""
    path = tmp_path_factory.mktemp("journeys") / "wh.duckdb"
    for run in RUNS:
        run_recipe(parse_recipe(readme_recipe(*run)), str(path))
    with Warehouse(path, read_only=True) as wh:
        rows = wh.sql(
            "SELECT r.recipe_name, t.*, p.gold FROM traces t JOIN problems p USING (problem_id)"
            " JOIN runs r USING (run_id) WHERE t.method = 'journey' AND t.status = 'kept'"
        )
    return [
        (row["recipe_name"], row, e)
        for row in rows.iter_rows(named=True)
        for e in check_journey(row)
    ]


def test_no_wrong_step_states_the_right_value_of_its_own_result(detours):
    counts: dict[str, list[int]] = {}
    bad = []
    for run, row, e in detours:
        restated = restated_right_value(row["thought"], e)
        counts.setdefault(run, [0, 0])[0] += restated
        counts[run][1] += 1
        if restated:
            bad.append(row["thought"][e["error_start"] : e["error_end"]])
    for run, (n, total) in sorted(counts.items()):
        print(f"{run}: {n} of {total} wrong steps state the right value of their own result")
    assert set(counts) == {readme_recipe(*run)["name"] for run in RUNS}
    assert all(total >= 300 for _, total in counts.values()), counts
    assert not bad, (len(bad), bad[:5])
