"""Language: the thought and the response are in the target language, and do not switch
script (DeepSeek-R1's language-consistency rule; the s1 distillation data has Chinese
sentences in 150 of 1,000 English traces).

Two measures over the prose only (LaTeX, code, numbers and equations cut out first, see
`reasonfactory.filters.text.MATH_AND_CODE`):
- the language of the thought and of the response, by lingua (its models ship in the
  wheel; only the candidate languages are loaded) on the first `sample_chars` characters
  of prose: another language -> `wrong_language`. A text with too little prose to judge
  (`min_letters`) gets no language verdict;
- the share of prose units in another script: a unit is a word in alphabetic scripts and a
  character in Han/Kana. Inside a Latin-script trace, CJK, Cyrillic... count; inside a
  CJK one, lower-case Latin words count (capitalised words are taken for names, single
  letters for variables). Over `max_mixed` -> `language_mixed`.
The `lang` column gets the thought's language (ISO 639-1). `meta.details.language` records
{thought, response, mixed, script}.

Script shares are polars regex counts (Rust, vectorised); lingua runs batched across cores.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl
from pydantic import Field, field_validator
from reasonfactory.filters.text import MATH_AND_CODE
from reasonfactory.generators.base import StrictModel

DEFAULT_CANDIDATES = ("en", "zh", "ja", "ko", "ru", "fr", "de", "es", "pt", "it", "vi", "ar")

# Prose units per script: words for alphabets, characters for Han and Kana, lower-case-led
# Latin words (names excluded) for non-Latin targets.
_UNITS = {
    "Latin": r"\p{Latin}{2,}",
    "Han": r"\p{Han}",
    "Kana": r"[\p{Hiragana}\p{Katakana}]",
    "Hangul": r"\p{Hangul}+",
    "Cyrillic": r"\p{Cyrillic}{2,}",
    "Arabic": r"\p{Arabic}+",
    "Hebrew": r"\p{Hebrew}+",
    "Devanagari": r"\p{Devanagari}+",
    "Thai": r"\p{Thai}",
}
_CAPITALISED = r"\p{Lu}\p{Latin}+"
_CHARS = {  # character classes of the scripts, for cutting them out
    "Latin": r"\p{Latin}",
    "Han": r"\p{Han}",
    "Kana": r"\p{Hiragana}\p{Katakana}",
    "Hangul": r"\p{Hangul}",
    "Cyrillic": r"\p{Cyrillic}",
    "Arabic": r"\p{Arabic}",
    "Hebrew": r"\p{Hebrew}",
    "Devanagari": r"\p{Devanagari}",
    "Thai": r"\p{Thai}",
}

# The scripts a language is written in (default: Latin).
_SCRIPTS = {
    "zh": ("Han",),
    "ja": ("Han", "Kana"),
    "ko": ("Hangul", "Han"),
    "ru": ("Cyrillic",),
    "uk": ("Cyrillic",),
    "bg": ("Cyrillic",),
    "be": ("Cyrillic",),
    "mk": ("Cyrillic",),
    "sr": ("Cyrillic",),
    "kk": ("Cyrillic",),
    "mn": ("Cyrillic",),
    "ar": ("Arabic",),
    "fa": ("Arabic",),
    "ur": ("Arabic",),
    "he": ("Hebrew",),
    "hi": ("Devanagari",),
    "mr": ("Devanagari",),
    "th": ("Thai",),
}


def _iso(code: str):
    from lingua import IsoCode639_1

    try:
        return IsoCode639_1.from_str(code.lower())
    except ValueError:
        raise ValueError(
            f"{code!r} is not an ISO 639-1 code lingua knows (e.g. en, zh, de)"
        ) from None


class LanguageOptions(StrictModel):
    """`language` filter options (all optional)."""

    lang: str = Field("en", description="target language, ISO 639-1")
    max_mixed: float = Field(0.05, ge=0, le=1, description="most prose in another script")
    candidates: tuple[str, ...] = Field(
        DEFAULT_CANDIDATES, description="languages the detector may answer (target added)"
    )
    sample_chars: int = Field(200, ge=50, description="prose characters given to lingua")
    min_letters: int = Field(
        40, ge=1, description="less prose than this (UTF-8 bytes of letters): no verdict"
    )

    @field_validator("lang")
    @classmethod
    def _known(cls, v: str) -> str:
        _iso(v)
        return v.lower()

    @field_validator("candidates")
    @classmethod
    def _known_all(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            _iso(code)
        return tuple(c.lower() for c in v)


@lru_cache(maxsize=4)
def load_detector(codes: tuple[str, ...]):
    """A lingua detector for these languages only (cached; ~10 MB a language)."""
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_iso_codes_639_1(*(_iso(c) for c in codes)).build()


def detect_languages(texts: list[str], codes: tuple[str, ...]) -> list[str | None]:
    """ISO 639-1 code per text (None for an empty text).

    >>> detect_languages(["The answer is the sum of the two numbers.", ""], ("en", "de"))
    ['en', None]
    """
    detector = load_detector(codes)
    found = detector.detect_languages_in_parallel_of(texts)
    return [lang.iso_code_639_1.name.lower() if lang else None for lang in found]


def prose(expr: pl.Expr) -> pl.Expr:
    """The text with math, code, numbers and equations cut out."""
    return expr.fill_null("").str.replace_all(MATH_AND_CODE, " ")


def script_counts(frame: pl.DataFrame, column: str, target: str) -> pl.DataFrame:
    """Per row: prose units in the target's scripts (`_own`) and in each other one (`_n_X`).

    The per-script counts run only on rows that hold any other-script character at all
    (most rows hold none), which keeps this one regex pass on the common row.
    """
    own = _SCRIPTS.get(target, ("Latin",))
    others = [s for s in _UNITS if s not in own]
    col = pl.col(column)
    base = frame.select(
        _own=pl.sum_horizontal(*(col.str.count_matches(_UNITS[s]) for s in own)),
        _any=col.str.count_matches("[" + "".join(_CHARS[s] for s in others) + "]"),
    ).with_row_index("_row")
    counts = {s: col.str.count_matches(_UNITS[s]) for s in others}
    if "Latin" in counts:  # capitalised words are names, not code-switching
        counts["Latin"] = (counts["Latin"] - col.str.count_matches(_CAPITALISED)).clip(0)
    rows = base.filter(pl.col("_any") > 0)["_row"]
    some = frame[rows].select(**{f"_n_{s}": e for s, e in counts.items()}).with_columns(_row=rows)
    return (
        base.join(some, on="_row", how="left", maintain_order="left")
        .drop("_row", "_any")
        .with_columns(pl.col(f"_n_{s}").fill_null(0) for s in others)
    )


def summarise_scripts(counts: pl.DataFrame) -> pl.DataFrame:
    """`_own`, `_other` (sum of other scripts) and `_script` (the most frequent other)."""
    other_cols = [c for c in counts.columns if c.startswith("_n_")]
    names = [c.removeprefix("_n_") for c in other_cols]
    return counts.select(
        "_own",
        _other=pl.sum_horizontal(*other_cols),
        _script=pl.concat_list(other_cols)
        .list.arg_max()
        .replace_strict(dict(enumerate(names)), return_dtype=pl.String),
    )


def language_filter(traces: pl.DataFrame, options: LanguageOptions | dict | None = None):
    """Verdicts `ok`, `reason`, `lang`, `detail` {thought, response, mixed, script}."""
    opts = LanguageOptions.model_validate(options or {})
    codes = tuple(sorted({opts.lang, *opts.candidates}))
    texts = traces.select(_thought=prose(pl.col("thought")), _response=prose(pl.col("response")))
    per_field = {f: script_counts(texts, f, opts.lang) for f in ("_thought", "_response")}
    units = summarise_scripts(per_field["_thought"] + per_field["_response"])
    total = units["_own"] + units["_other"]
    mixed = (units["_other"] / total).fill_nan(0.0).fill_null(0.0).round(4)
    own = set(_SCRIPTS.get(opts.lang, ("Latin",)))
    # Only languages written in the target's script need lingua to tell them apart; a text
    # in another script is told by its script (lingua then only names it, for `lang`).
    same_script = tuple(c for c in codes if own & set(_SCRIPTS.get(c, ("Latin",))))
    langs = {}
    foreign_chars = "[" + "".join(_CHARS[x] for x in _UNITS if x not in own) + "]+"
    for field in ("_thought", "_response"):
        field_units = summarise_scripts(per_field[field])
        in_script = (field_units["_own"] >= field_units["_other"]).to_list()
        text = texts[field].str.slice(0, 4 * opts.sample_chars)
        # In a text of the target's script, lingua reads the target-script part only (the
        # code-switched share is measured above, not guessed from a 200-character sample).
        cleaned = text.str.replace_all(foreign_chars, " ")
        sample = (
            pl.Series([c if k else t for c, t, k in zip(cleaned, text, in_script, strict=True)])
            .str.replace_all(r"\s+", " ")
            .str.slice(0, opts.sample_chars)
        )
        # letters in UTF-8 bytes: a CJK character (3 bytes) says more than a Latin letter
        letters = sample.str.replace_all(r"\P{L}+", "").str.len_bytes()
        judged = (letters >= opts.min_letters).to_list()
        found = [None] * len(judged)
        for subset, candidates in ((True, same_script), (False, codes)):
            idx = [
                i
                for i, (j, s) in enumerate(zip(judged, in_script, strict=True))
                if j and s is subset
            ]
            if not idx:
                continue
            if len(candidates) == 1:
                detected = list(candidates) * len(idx)
            else:
                detected = detect_languages([sample[i] for i in idx], candidates)
            for i, lang in zip(idx, detected, strict=True):
                found[i] = lang
        langs[field] = found
    foreign_dominant = (units["_other"] > units["_own"]).to_list()
    reasons = []
    for i, (t, r) in enumerate(zip(langs["_thought"], langs["_response"], strict=True)):
        wrong = any(x is not None and x != opts.lang for x in (t, r)) or foreign_dominant[i]
        if wrong:
            reasons.append("wrong_language")
        elif mixed[i] > opts.max_mixed:
            reasons.append("language_mixed")
        else:
            reasons.append(None)
    reason = pl.Series("reason", reasons, dtype=pl.String)
    has_other = units["_other"] > 0
    return pl.DataFrame(
        {
            "ok": reason.is_null(),
            "reason": reason,
            "lang": pl.Series(
                [t or r for t, r in zip(langs["_thought"], langs["_response"], strict=True)],
                dtype=pl.String,
            ),
            "detail": pl.DataFrame(
                {
                    "thought": pl.Series(langs["_thought"], dtype=pl.String),
                    "response": pl.Series(langs["_response"], dtype=pl.String),
                    "mixed": mixed,
                    "script": pl.Series(units["_script"]).zip_with(
                        has_other, pl.Series([None] * traces.height, dtype=pl.String)
                    ),
                }
            ).to_struct(),
        }
    )
