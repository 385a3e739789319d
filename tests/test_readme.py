"""README promises that are checked, not trusted: files it names, defaults it states."""

from __future__ import annotations

import re
from pathlib import Path

import conftest
from reasonfactory.generators.methods.journey import JourneyConfig
from reasonfactory.generators.problems.sources import load_problems

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_every_data_file_the_readme_names_is_shipped():
    named = set(re.findall(r"\bdata/[\w.-]+\.jsonl\b", README))
    assert named, "README names no data files"
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert not missing, f"README names {missing}, not in the repository"


def test_the_shipped_samples_load_as_the_readme_imports_them():
    gsm8k = load_problems(str(ROOT / "data/gsm8k_test.jsonl"), answer_format="gsm8k")
    assert gsm8k.height == 20 and gsm8k["gold"].null_count() == 0
    math = load_problems(
        str(ROOT / "data/math500.jsonl"),
        fields={"question": "problem", "answer": "solution"},
        answer_format="boxed",
    )
    assert math.height == 10 and math["gold"].null_count() == 0


def test_the_tour_says_how_to_reach_the_command():
    tour = _section("A five-minute tour")
    assert "source .venv/bin/activate" in tour or ".venv/bin/reasonfactory" in tour


def test_journey_keep_sources_default_is_the_one_readme_states():
    line = next(x for x in README.splitlines() if "keep_sources:" in x)
    stated = re.search(r"keep_sources:\s*(true|false)\s*#\s*default", line)
    assert stated, f"README does not state keep_sources' default: {line!r}"
    assert (stated.group(1) == "true") is JourneyConfig().keep_sources


def test_real_data_tests_follow_the_env_var(tmp_path, monkeypatch):
    (tmp_path / "gsm8k_test.jsonl").write_text("{}\n")
    monkeypatch.setenv("REASONFACTORY_SHARED_DATA", str(tmp_path))
    assert conftest.shared_data("gsm8k_test.jsonl") == tmp_path / "gsm8k_test.jsonl"


def test_the_identity_table_is_the_one_run_ids_and_sample_keys_use():
    """README's "Resume" table says, row by row, what `RunIdentity` puts in a run's identity
    and a sample's key; a row changed on one side only fails here."""
    from reasonfactory.generators.identity import IDENTITY

    section = _section("Resume: what identifies a sample")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| setting")
    ]
    want = [
        [r.setting, "yes" if r.run else "no", "yes" if r.sample else "no", r.why] for r in IDENTITY
    ]
    assert rows == want


def test_the_filters_block_parses_and_names_no_file_a_clone_lacks():
    import yaml
    from reasonfactory.filters.pipeline import check_filter_order, filter_options, parse_filter_spec

    block = README.split("```yaml\nfilters:\n", 1)[1].split("```", 1)[0]
    specs = [parse_filter_spec(item) for item in yaml.safe_load("filters:\n" + block)["filters"]]
    check_filter_order(specs)
    options = {spec.name: filter_options(spec) for spec in specs}
    assert {"format", "answer", "vote", "length", "steps", "dedup", "decontam"} <= set(options)
    # Once `tokenizer: ./my-model` (a folder no clone has: Hugging Face's repo-id error inside
    # the flow) and min_tokens: 50, which kept none of the demo's traces without it.
    assert options["length"].tokenizer is None and not options["length"].min_tokens
    for path in options["decontam"].benchmarks:
        assert (ROOT / path).is_file(), path


def test_the_final_answer_phrases_readme_lists_are_the_ones_read():
    """README's "A real model on your laptop" lists the final-answer phrases; each, after a
    line of working, is read as the answer 31 and rewritten in the R1 form, and the
    placeholder it names states no answer."""
    from reasonfactory.generators.prompts import parse_completion

    section = _section("A real model on your laptop")
    listed = section.split("The phrases read", 1)[1].split("A phrase followed", 1)[0]
    phrases = [p for p in re.findall(r"`([^`]*31[^`]*)`", listed)]
    assert len(phrases) >= 7, phrases
    for phrase in phrases:
        text = "7 * 4 = 28\n28 + 3 = 31\n" + phrase.replace("... ", "").replace("\\\\", "\\")
        p = parse_completion(text, None, "final_answer")
        assert (p.predicted, p.response) == ("31", "The final answer is \\boxed{31}."), phrase
    assert (
        parse_completion("7 * 4 = 28\nThe final answer is ANSWER.", None, "final_answer").predicted
        is None
    )
    for path in re.findall(r"\bexamples/[\w.-]+\.yaml\b", README):
        assert (ROOT / path).is_file(), path


def test_the_rl_section_names_real_options_functions_and_trainer_settings():
    """README's RL section: every `export rl` option it shows is one the command takes, the
    GRPO script imports what `reasonfactory.rewards` has and sets GRPOConfig fields TRL has,
    and the table lists every reward function."""
    import ast

    import typer
    from reasonfactory.flows.cli import app
    from reasonfactory.rewards import REWARD_NAMES
    from trl import GRPOConfig

    section = _section("RL: prompts and the factory's verifiers as rewards")
    shell = section.split("```bash\n", 1)[1].split("```", 1)[0]
    export = typer.main.get_command(app).commands["export"].commands["rl"]
    takes = {opt for p in export.params for opt in p.opts}
    shown = set(re.findall(r"(?<!\w)--[a-z][a-z-]+", shell))
    assert shown and shown <= takes, shown - takes
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    tree = ast.parse(script)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("reasonfactory"):
            module = __import__(node.module, fromlist=["x"])
            assert all(hasattr(module, a.name) for a in node.names), node.module
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GRPOConfig":
            fields = GRPOConfig.__dataclass_fields__
            assert all(k.arg in fields for k in node.keywords), [k.arg for k in node.keywords]
    for name in REWARD_NAMES:
        assert f"`{name}_reward`" in section, name
    assert "see the judge section" in section
