"""The language filter: target language, code-switching share, the `lang` column."""

from __future__ import annotations

import pytest
from reasonfactory.filters.language import LanguageOptions, language_filter
from reasonfactory.filters.pipeline import FilterSpec, apply_filters
from trace_fixtures import CHINESE, ENGLISH, FRENCH, MIXED, make_traces


def _verdicts(texts, **options):
    v = language_filter(make_traces(texts), options)
    return v["reason"].to_list(), v["lang"].to_list(), v["detail"].to_list()


def test_english_chinese_and_mixed_traces_against_english():
    reasons, langs, details = _verdicts([ENGLISH, CHINESE, MIXED, FRENCH], lang="en")
    assert reasons == [None, "wrong_language", "language_mixed", "wrong_language"]
    assert langs == ["en", "zh", "en", "fr"]
    assert details[0]["mixed"] == 0.0
    assert details[2]["script"] == "Han" and 0.05 < details[2]["mixed"] < 0.5


def test_chinese_target_keeps_the_chinese_trace_and_rejects_the_english_one():
    reasons, langs, _ = _verdicts([CHINESE, ENGLISH], lang="zh")
    assert reasons == [None, "wrong_language"]
    assert langs[0] == "zh"


def test_latin_words_inside_a_chinese_trace_count_but_names_and_variables_do_not():
    names = CHINESE.replace("农民", "Newton 农民").replace("所以先做乘法", "所以设 x 先做乘法")
    switched = CHINESE.replace(
        "然后孩子们",
        "then the children eat nine of them so we subtract these apples now, 然后孩子们",
    )
    reasons, _, details = _verdicts([names, switched], lang="zh")
    assert reasons == [None, "language_mixed"]
    assert details[0]["mixed"] == 0.0 and details[1]["script"] == "Latin"


def test_threshold_decides_mixed():
    reasons, _, details = _verdicts([MIXED], lang="en", max_mixed=0.9)
    assert reasons == [None] and details[0]["mixed"] > 0.05


def test_math_and_code_do_not_count_as_another_language():
    greek_math = ENGLISH.replace("$12 \\times 7 = 84$", "$\\alpha = 12 \\times 7 = 84$, α·β")
    reasons, _, details = _verdicts([greek_math], lang="en")
    assert reasons == [None] and details[0]["mixed"] == 0.0


def test_too_little_prose_gets_no_language_verdict():
    step_only = "<think>\nStep 1: 12 * 7 = 84.\n\nStep 2: 84 - 9 = 75.\n</think>\n\n\\boxed{75}"
    reasons, langs, _ = _verdicts([step_only], lang="en")
    assert reasons == [None] and langs == [None]


def test_unknown_language_code_is_a_clear_error():
    with pytest.raises(ValueError, match="not an ISO 639-1 code"):
        LanguageOptions(lang="english")


def test_pipeline_fills_the_lang_column():
    out = apply_filters(make_traces([ENGLISH, CHINESE]), [FilterSpec("language", {"lang": "en"})])
    assert out["lang"].to_list() == ["en", "zh"]
    assert out["reject_reason"].to_list() == [None, "wrong_language"]
