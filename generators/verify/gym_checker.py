"""Answers to reasoning-gym problems, scored by the family's own `score_answer`.

A gym problem's `meta.checker` is `gym:` + JSON `{"family", "config", "metadata"}`: the
family, the config settings it was made with (only those given, so they stay plain JSON),
and the entry's metadata (what `score_answer` reads besides the gold). That is enough to
score an answer again later without regenerating anything (`score_gym`). A score is in
[0, 1]; 1 is right, and the answer filter's `min_score` says what counts as correct
(partial credit is kept in `meta.details.answer.score`).

The answer is the family's own format, read from the reply's `\\boxed{}` (as every answer is)
or, when there is none, from reasoning-gym's `<answer>...</answer>` tags (`read_answer`).

Where reasoning-gym's scorer would run model text as Python, it is not called:
- `countdown` and `puzzle24` are decided by the Countdown rule of this layer (countdown.py:
  each given number exactly once, the target reached, a strict parser; negation allowed, as
  reasoning-gym's own golds use it); reasoning-gym's `puzzle24` scorer does not check which
  numbers were used (any expression making 24 from four numbers in range scored 1.0).
- families that `eval` a non-matching answer (`EVALUATES`) get only answers that are Python
  literals or hold no `(` (no call can happen without one);
- families that hand the answer to sympy's `parse_expr` (`SYMPY_PARSES`) get only plain
  formulas: letters, digits, `+ - * / ^ ( ) . ,` and a few function names (`MATH_NAMES`).
Refused answers score 0 with the reason. Two more fixes of reasoning-gym 0.1.25's scorers:
`game_of_life_halting` compares `bool(answer)` (any non-empty answer, `False` too, scored
1.0), so its answers are compared as written (case-insensitive); the ARC families compare
the board with the stored `output` as tuples, which JSON gives back as lists, so those are
made tuples again (`TUPLES`). Everything runs in the answer pool's worker
processes (answer_pool.py) under its time and memory limits, since some scorers (sympy
simplification) are slow on hostile input.

Not here: making gym problems (generators/problems/gym.py) or the pool itself.
"""

from __future__ import annotations

import ast
import json
import math
import re
from functools import lru_cache

from reasonfactory.generators.verify.countdown import check_countdown

PREFIX = "gym:"
INSTALL_HINT = "reasoning-gym is not installed: pip install -e '.[gym]' (or reasoning-gym==0.1.25)"

# Families decided by this layer's Countdown rule instead of reasoning-gym's sympy scorer.
COUNTDOWN_RULE = {"countdown": None, "puzzle24": 24}  # family -> fixed target (None: metadata)
# Families whose answer is compared with the gold as written, case-insensitive (see above).
EXACT = frozenset({"game_of_life_halting"})
# Metadata fields a family's scorer compares as tuples of tuples (JSON stores lists).
TUPLES = {"arc_agi": ("output",), "rearc": ("output",)}
# Families whose scorer calls eval() on an answer that is not the gold string.
EVALUATES = frozenset({"string_insertion", "spiral_matrix", "binary_matrix", "n_queens"})
# Families whose scorer evaluates the gold with eval() (a gold read from a user's file).
EVALUATES_GOLD = frozenset({"number_sorting"})
# Families whose scorer hands the answer (and gold) to sympy's parse_expr (which evals).
SYMPY_PARSES = frozenset(
    {"simple_integration", "intermediate_integration", "polynomial_multiplication"}
)
# Function names a formula answer may use (any single letter is a variable).
_NAMES = "sin cos tan cot sec csc asin acos atan sinh cosh tanh exp log ln sqrt pi E I oo Abs"
MATH_NAMES = frozenset(_NAMES.split() + ["Integral"])
_FORMULA = re.compile(r"[A-Za-z0-9+\-*/^().,\s]*")
_WORD = re.compile(r"[A-Za-z]+")
_ATTRIBUTE = re.compile(r"\.\s*[A-Za-z]")
MAX_FORMULA = 2000  # characters; a longer formula is refused before sympy sees it


def gym_spec(family: str, config: dict, metadata: dict) -> str:
    """The checker spec of one gym entry (stable: keys sorted).

    >>> gym_spec("chain_sum", {}, {"expression": "4 - 1"})
    'gym:{"config":{},"family":"chain_sum","metadata":{"expression":"4 - 1"}}'
    """
    body = {"family": family, "config": config, "metadata": metadata}
    return PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_spec(spec: str) -> dict:
    """The family, config and metadata of a spec; ValueError saying what is wrong.

    >>> parse_spec(gym_spec("maze", {}, {}))["family"]
    'maze'
    """
    try:
        data = json.loads(spec.removeprefix(PREFIX))
    except ValueError:
        raise ValueError(f"checker {spec[:60]!r}: not gym:{{JSON}}") from None
    if not isinstance(data, dict) or not isinstance(data.get("family"), str):
        raise ValueError(f"checker {spec[:60]!r}: expected a JSON object with a 'family'")
    for key in ("config", "metadata"):
        if not isinstance(data.setdefault(key, {}), dict):
            raise ValueError(f"checker {spec[:60]!r}: {key!r} is not a JSON object")
    return data


def read_answer(response: str | None) -> str | None:
    """The content of the last `<answer>...</answer>` of a reply (reasoning-gym's answer
    format), stripped, or None. Two `rfind`s: linear in the reply whatever it holds.

    >>> read_answer("so <answer>first</answer> no, <answer> 4 7 </answer>")
    '4 7'
    """
    if not response:
        return None
    start = response.rfind("<answer>")
    end = response.find("</answer>", start + 8) if start != -1 else -1
    if end == -1:
        return None
    return response[start + 8 : end].strip()


def with_tagged_answers(traces):
    """Traces (a polars frame with `checker`, `response`, `predicted`) whose gym problems'
    replies have no `\\boxed{}` answer get the `<answer>` tag's content as `predicted`."""
    import polars as pl

    if traces.height == 0 or not {"checker", "response", "predicted"} <= set(traces.columns):
        return traces
    gym = pl.col("checker").str.starts_with(PREFIX).fill_null(False)
    if not traces.select((gym & pl.col("predicted").is_null()).any()).item():
        return traces
    tagged = pl.Series([read_answer(r) for r in traces["response"]], dtype=pl.String)
    return traces.with_columns(
        predicted=pl.when(gym & pl.col("predicted").is_null())
        .then(tagged)
        .otherwise(pl.col("predicted"))
    )


def score_gym(spec: str, gold: str | None, predicted: str | None) -> tuple[float, str]:
    """The family's score of `predicted` in [0, 1] and how it was reached. Runs the family's
    scorer in this process with no time limit: callers use the answer pool.

    >>> score_gym(gym_spec("countdown", {}, {"numbers": [4, 6], "target": 24}), "4*6", "6*4")
    (1.0, 'countdown rule')
    """
    data = parse_spec(spec)
    family, metadata = data["family"], data["metadata"]
    if predicted is None or not predicted.strip():
        return 0.0, "no answer"
    if family in COUNTDOWN_RULE:
        target = COUNTDOWN_RULE[family] or metadata.get("target")
        numbers = metadata.get("numbers")
        if not isinstance(target, int) or not isinstance(numbers, list):
            raise ValueError(f"{family} checker: metadata lacks numbers or target")
        ok = check_countdown([int(n) for n in numbers], target, predicted, unary_minus=True)
        return (1.0 if ok else 0.0), "countdown rule"
    if family in EXACT:
        same = predicted.strip().lower() == (gold or "").strip().lower()
        return (1.0 if same else 0.0), "answer as written"
    refused = refuse(family, gold, predicted)
    if refused:
        return 0.0, refused
    for key in TUPLES.get(family, ()):
        if isinstance(metadata.get(key), list):
            metadata[key] = tuple(tuple(row) for row in metadata[key])
    entry = {"question": "", "answer": gold, "metadata": metadata}
    score = scorer(family, json.dumps(data["config"], sort_keys=True)).score_answer(
        predicted, entry
    )
    score = float(score) if isinstance(score, int | float) and math.isfinite(score) else 0.0
    return min(max(score, 0.0), 1.0), f"{family} score_answer"


def refuse(family: str, gold: str | None, predicted: str) -> str | None:
    """Why an answer must not reach the family's scorer (it would run it as code), or None.

    >>> refuse("binary_matrix", "0 1", "__import__('os').getcwd()")
    'not evaluated: a non-literal with a call in it'
    >>> refuse("simple_integration", "x**2", "x.__class__") is not None
    True
    """
    unlike_gold = predicted.strip() != (gold or "").strip()
    if family in EVALUATES and unlike_gold and "(" in predicted and not _literal(predicted):
        return "not evaluated: a non-literal with a call in it"
    if family in EVALUATES_GOLD and gold is not None and not _literal(gold):
        return "not evaluated: the gold is not a literal"
    if family in SYMPY_PARSES:
        for text, what in ((predicted, "answer"), (gold or "", "gold")):
            why = _not_formula(text)
            if why:
                return f"not parsed: the {what} {why}"
    return None


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _not_formula(text: str) -> str | None:
    if len(text) > MAX_FORMULA:
        return f"is over {MAX_FORMULA} characters"
    if not _FORMULA.fullmatch(text):
        return "has characters a formula does not"
    if _ATTRIBUTE.search(text):
        return "reads an attribute"
    for word in _WORD.findall(text):
        if len(word) > 1 and word not in MATH_NAMES:
            return f"names {word[:20]!r}"
    return None


@lru_cache(maxsize=256)
def scorer(family: str, config_json: str):
    """The family's dataset object (built once per process and config) whose
    `score_answer` scores. Raises ImportError with the install command without reasoning-gym."""
    factory = _factory()
    if family not in factory.DATASETS:
        raise ValueError(f"unknown reasoning-gym family {family!r}")
    dataset_cls, config_cls = factory.DATASETS[family]
    config = config_cls(**json.loads(config_json))
    return dataset_cls(config=config)


def _factory():
    try:
        from reasoning_gym import factory
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return factory


def warm(specs) -> None:
    """Build the scorers of these specs in this process, so pool workers forked from it
    start with them (a family may read word lists or data files when it is built)."""
    for spec in set(specs):
        data = parse_spec(spec)
        if data["family"] not in COUNTDOWN_RULE:
            scorer(data["family"], json.dumps(data["config"], sort_keys=True))
