"""Problem sources: built-in families, JSONL / Parquet / datasets folders, answer formats."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_data, write_jsonl
from reasonfactory.generators.engines.sim_plans import plan_problem
from reasonfactory.generators.problems.families import make_problems
from reasonfactory.generators.problems.sources import ProblemSourceError, load_problems

GSM8K_LIKE = [
    {
        "question": "Janet has 16 eggs and eats 3. How many are left?",
        "answer": "She has 16 - 3 = <<16-3=13>>13 left.\n#### 13",
        "id": 0,
    },
    {
        "question": "A shop sells 1,200 pens a day for 5 days. How many pens?",
        "answer": "1200 * 5 = 6000\n#### 6,000",
        "id": 1,
    },
]
MATH_LIKE = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?",
        "solution": "We get $\\boxed{\\frac{5}{6}}$.",
        "answer": "\\frac{5}{6}",
        "level": 2,
    },
]


def test_builtin_families_are_seeded_and_distinct():
    a = load_problems("builtin:arithmetic", limit=50, seed=7)
    b = load_problems("builtin:arithmetic", limit=50, seed=7)
    c = load_problems("builtin:arithmetic", limit=50, seed=8)
    assert a.equals(b) and not a.equals(c)
    assert a["problem_id"].n_unique() == 50
    assert set(a.columns) == {"problem_id", "source", "question", "gold", "meta"}


@pytest.mark.parametrize("family", ["arithmetic", "linear"])
def test_every_builtin_problem_has_a_plan_whose_steps_reach_the_gold(family):
    from fractions import Fraction

    from reasonfactory.generators.engines.sim_plans import Ref
    from reasonfactory.generators.problems.families import OPS

    for p in make_problems(family, 200, seed=0):
        name, plan = plan_problem(p.question)
        assert name == family
        values = []
        for s in plan:
            get = lambda o, v=values: v[o.index] if isinstance(o, Ref) else o  # noqa: E731
            values.append(OPS[s.op](get(s.lhs), get(s.rhs)))
        assert values[-1] == Fraction(p.gold)


def test_arithmetic_difficulty_is_the_number_of_operations():
    for p in make_problems("arithmetic", 30, seed=1, difficulty=(4, 4)):
        assert p.difficulty == 4
        assert len(plan_problem(p.question)[1]) == 4


def test_jsonl_with_gsm8k_answers(tmp_path):
    path = write_jsonl(tmp_path / "gsm.jsonl", GSM8K_LIKE)
    df = load_problems(str(path), answer_format="gsm8k")
    assert df["gold"].to_list() == ["13", "6000"]
    assert df["source"].to_list() == ["gsm", "gsm"]


def test_field_mapping_plain_and_boxed(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", MATH_LIKE)
    plain = load_problems(str(path), fields={"question": "problem"}, answer_format="plain")
    boxed = load_problems(
        str(path), fields={"question": "problem", "answer": "solution"}, answer_format="boxed"
    )
    assert plain["gold"].to_list() == boxed["gold"].to_list() == ["\\frac{5}{6}"]


def test_parquet_and_datasets_folder(tmp_path):
    import datasets

    frame = pl.DataFrame(MATH_LIKE)
    frame.write_parquet(tmp_path / "m.parquet")
    datasets.Dataset.from_polars(frame).save_to_disk(str(tmp_path / "ds"))
    from_parquet = load_problems(str(tmp_path / "m.parquet"), fields={"question": "problem"})
    from_hf = load_problems(f"hf:{tmp_path / 'ds'}", fields={"question": "problem"}, name="m")
    assert from_parquet["gold"].to_list() == from_hf["gold"].to_list() == ["\\frac{5}{6}"]
    assert from_parquet["problem_id"].to_list() == from_hf["problem_id"].to_list()


def test_malformed_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GSM8K_LIKE[0], GSM8K_LIKE[1], '{"question": "x",'])
    with pytest.raises(ProblemSourceError, match=r"bad\.jsonl line 3: not valid JSON"):
        load_problems(str(path), answer_format="gsm8k")


def test_missing_field_names_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", MATH_LIKE)
    with pytest.raises(ProblemSourceError, match=r"m\.jsonl line 1: field 'question'.*problem"):
        load_problems(str(path))


def test_gold_missing_in_declared_format_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "no hashes here"}])
    with pytest.raises(ProblemSourceError, match=r"g\.jsonl line 1: field 'answer'.*gsm8k"):
        load_problems(str(path), answer_format="gsm8k")


def test_unknown_builtin_lists_the_valid_ones():
    with pytest.raises(ProblemSourceError, match="builtin:arithmetic, builtin:linear"):
        load_problems("builtin:geometry")


def test_real_gsm8k_loads_with_bare_number_golds():
    df = load_problems(str(shared_data("gsm8k_test.jsonl")), answer_format="gsm8k")
    assert df.height == 1319
    assert df["gold"].str.contains(r"^-?\d+(\.\d+)?$").all()
    assert df["gold"][0] == "18"


@pytest.mark.parametrize(
    "name,fields,fmt,rows",
    [
        ("math500.jsonl", {"question": "problem"}, "plain", 500),
        ("math500.jsonl", {"question": "problem", "answer": "solution"}, "boxed", 500),
        ("aime24.jsonl", {"question": "problem"}, "plain", 30),
        ("aime25.jsonl", {"question": "problem"}, "plain", 30),
    ],
)
def test_real_math_sets_load(name, fields, fmt, rows):
    df = load_problems(str(shared_data(name)), fields=fields, answer_format=fmt)
    assert df.height == rows and df["gold"].null_count() == 0


def test_a_glob_or_a_folder_is_one_problem_set_that_grows(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_jsonl(incoming / "a.jsonl", [{"question": "1 + 1?", "answer": "2"}])
    glob_source, folder = str(incoming / "*.jsonl"), str(incoming)
    first = load_problems(glob_source)
    assert first["source"].to_list() == ["incoming"]
    pl.DataFrame({"question": ["2 + 2?"], "answer": ["4"]}).write_parquet(incoming / "b.parquet")
    write_jsonl(incoming / "c.jsonl", [{"question": "1 + 1?", "answer": "2"}, {"question": "3?"}])
    (incoming / "notes.txt").write_text("not problems")
    grown = load_problems(folder)  # a folder takes its .jsonl and .parquet files
    assert grown["question"].to_list() == ["1 + 1?", "2 + 2?", "3?"]
    # A problem keeps its id whichever file, pattern or folder it comes from.
    assert grown["problem_id"][0] == first["problem_id"][0]
    assert load_problems(glob_source)["question"].to_list() == ["1 + 1?", "3?"]
    write_jsonl(incoming / "d.jsonl", [{"question": "2 + 2?", "answer": "5"}])
    with pytest.raises(ProblemSourceError, match=r"b.parquet row 0 with a different gold"):
        load_problems(folder)
    with pytest.raises(ProblemSourceError, match="notes.txt is not .jsonl or .parquet"):
        load_problems(str(incoming / "*"))
    with pytest.raises(ProblemSourceError, match="no problems in it"):
        load_problems(str(incoming / "*.ndjson"))
    with pytest.raises(ProblemSourceError, match="no folder"):
        load_problems(str(tmp_path / "missing" / "*.jsonl"))


def test_a_gsm8k_solution_is_never_a_plain_gold(tmp_path):
    """The shipped GSM8K sample imported without `answer_format: gsm8k` once stored each
    whole worked solution (with its `####` line) as the gold."""
    sample = Path(__file__).resolve().parents[1] / "data" / "gsm8k_test.jsonl"
    with pytest.raises(ProblemSourceError) as info:
        load_problems(str(sample))
    assert re.fullmatch(
        r".*gsm8k_test\.jsonl line 1: field 'answer' is a GSM8K worked solution .*"
        r"--answer-format gsm8k .*answer_format: gsm8k.*",
        str(info.value),
    )
    assert load_problems(str(sample), answer_format="gsm8k")["gold"][0] == "18"
    # a plain gold may still hold `####` elsewhere than at the start of a line
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "q", "answer": "C# #### 3"}])
    assert load_problems(str(path))["gold"].to_list() == ["C# #### 3"]
