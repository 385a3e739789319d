"""Recipes validate strictly and name what is wrong; identity is content-derived."""

from __future__ import annotations

import pytest
from reasonfactory.flows.recipe import DEMO_RECIPE, RecipeError, load_recipe, parse_recipe

BASE = {"name": "r", "problems": {"source": "builtin:arithmetic"}}


def test_unknown_top_level_key_names_it_and_the_allowed_ones():
    with pytest.raises(RecipeError) as exc:
        parse_recipe({**BASE, "filtres": ["answer"]})
    msg = str(exc.value)
    assert "unknown key 'filtres'" in msg
    for allowed in ("name", "problems", "engine", "generate", "filters"):
        assert allowed in msg


def test_unknown_nested_key_names_its_path():
    with pytest.raises(
        RecipeError, match=r"unknown key 'generate.sampels'; allowed: method, samples"
    ):
        parse_recipe({**BASE, "generate": {"method": "self_output", "sampels": 4}})


def test_bad_choice_lists_the_allowed_values():
    with pytest.raises(
        RecipeError,
        match=r"problems.answer_format: 'latex' is not allowed; "
        r"expected 'plain', 'boxed' or 'gsm8k'",
    ):
        parse_recipe({"name": "r", "problems": {"source": "x", "answer_format": "latex"}})
    with pytest.raises(RecipeError, match=r"generate.method.*'self_output'"):
        parse_recipe({**BASE, "generate": {"method": "mcts"}})  # beam is a method now


def test_unknown_filter_and_out_of_range_value():
    with pytest.raises(RecipeError, match=r"unknown filter 'spell'; valid: answer, format"):
        parse_recipe({**BASE, "filters": ["answer", "spell"]})
    with pytest.raises(RecipeError, match=r"engine.error_rate"):
        parse_recipe({**BASE, "engine": {"kind": "sim", "error_rate": 1.5}})


def test_fingerprint_tracks_output_changing_settings_only():
    a = parse_recipe({**BASE, "generate": {"samples": 4}})
    same = parse_recipe(
        {**BASE, "generate": {"samples": 4, "shard_size": 7}, "filters": ["format"]}
    )
    other_seed = parse_recipe({**BASE, "generate": {"samples": 4, "seed": 1}})
    assert a.fingerprint == same.fingerprint
    assert a.fingerprint != other_seed.fingerprint
    assert a.run_id != other_seed.run_id


def test_round_trip_through_yaml(tmp_path):
    rec = parse_recipe(DEMO_RECIPE)
    path = tmp_path / "r.yaml"
    path.write_text(rec.to_yaml())
    again = load_recipe(path)
    assert again == rec and again.fingerprint == rec.fingerprint


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nproblems: {source: builtin:linear\n")
    with pytest.raises(RecipeError, match=r"broken\.yaml line \d+: not valid YAML"):
        load_recipe(path)
