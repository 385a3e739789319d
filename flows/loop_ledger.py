"""The loop's stage results (dataclasses) and its ledger, `state.json`, which records each
finished stage's result so a killed loop resumes at the stage it was in.

`Ledger.once(stage, fn, *args)` is the only way a stage runs: it returns the stage's
recorded result, or runs `fn(*args)`, records what it returns and returns that.
`state.json` is readable JSON, each result's fields and its type:
`{"format": 2, "stages": {"r1:generate": {"type": "Generation", "run_id": ...}, ...}}`;
dropping a stage from `stages` redoes it. A `state.json` written before the results were
typed (no `format` key) is refused: its loop must start again in a new workdir.

Not here: what the stages do (flows/loop_stages.py) or the tables read from their results
(flows/loop_tables.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from reasonfactory.warehouse.errors import UserError

FORMAT = 2  # 1: untyped stage values (before typed results); refused


@dataclass(frozen=True)
class Pools:
    """The problem files: seed and held-out with answers, the rounds' without."""

    seed: str
    heldout: str
    rounds: tuple[str, ...]  # round k's file at k - 1
    compare: str | None  # round 1's problems in order, then problems.compare_extra more
    # with a curriculum: round k's file at each difficulty (lowest first) at [k - 1];
    # `rounds` then holds each round's file at the curriculum's start
    levels: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Student:
    """The untrained student the cold start trains."""

    path: str


@dataclass(frozen=True)
class Generation:
    """A generation run as the warehouse holds it (its `progress` rows and traces), over all
    the invocations it took: a run resumed after a kill counts its whole work.

    `tokens_used` is the loop's budget quantity: the completion tokens of the samples the
    run used, `tokens_generated` by the engine plus `tokens_reused` (served stored).
    """

    run_id: str
    problems: int  # problems done
    traces: int  # traces stored, kept or rejected
    kept: int
    tokens_generated: int
    tokens_reused: int

    @property
    def tokens_used(self) -> int:
        return self.tokens_generated + self.tokens_reused


@dataclass(frozen=True)
class Chunk:
    """One chunk of a compare arm: the pool's first `limit` problems done, and the arm's
    run after it (the chunks are one run, its problem limit raised each time)."""

    limit: int
    generation: Generation


@dataclass(frozen=True)
class Exported:
    """An SFT export of a run's kept traces; `folder` is None when none were kept."""

    rows: int
    folder: str | None


@dataclass(frozen=True)
class Trained:
    path: str
    model_id: str


@dataclass(frozen=True)
class SelfCorrection:
    """Of a model's held-out traces: how many have a false step (`with_error`), fix one
    later (`with_fix`, `generators.verify.steps.fixed_errors`), and fix one and are right."""

    traces: int
    with_error: int
    with_fix: int
    fix_correct: int


@dataclass(frozen=True)
class Scored:
    """A model's held-out eval: pass@1 with its 95% Wilson interval over `n` problems."""

    run_id: str
    pass1: float
    ci_low: float
    ci_high: float
    n: int
    fixes: SelfCorrection


@dataclass(frozen=True)
class Level:
    """A curriculum round's difficulty, and what chose it: the pass rate of the previous
    round's generation (flows/loop_stages.py `choose_level`; None in round 1 or when it
    stored no trace) and that run's id."""

    difficulty: int
    pass_rate: float | None
    measured_on: str | None


RESULTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (Pools, Student, Generation, Chunk, Exported, Trained, Scored, Level)
}
T = TypeVar("T")


class Ledger:
    """The finished stages of a loop, each with its typed result, kept in `state.json`."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / "state.json"
        self.results: dict[str, Any] = _read(self.path) if self.path.exists() else {}

    def __contains__(self, stage: str) -> bool:
        return stage in self.results

    def once(self, stage: str, fn: Callable[..., T], *args, **kwargs) -> T:
        """The stage's recorded result; or run `fn(*args, **kwargs)`, record its result and
        return it."""
        if stage not in self.results:
            self._record(stage, fn(*args, **kwargs))
        return self.results[stage]

    def get(self, stage: str, kind: type[T]) -> T | None:
        """A finished stage's result (None when not finished); `kind` is what it must be."""
        result = self.results.get(stage)
        if result is not None and not isinstance(result, kind):
            raise UserError(
                f"{self.path}: stage {stage!r} holds a {type(result).__name__}, "
                f"not a {kind.__name__}"
            )
        return result

    def _record(self, stage: str, result) -> None:
        if type(result).__name__ not in RESULTS:
            raise TypeError(f"stage {stage!r} returned {result!r}, not a stage result")
        self.results[stage] = result
        stages = {s: {"type": type(r).__name__, **asdict(r)} for s, r in self.results.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "stages": stages}, indent=1))
        tmp.replace(self.path)  # a kill leaves the old file or the new one, never half


def _read(path: Path) -> dict[str, Any]:
    """`state.json`'s stages as typed results; a bad or old file is a one-line error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a loop state file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise UserError(
            f"{path}: a loop state of format {found or 1}, written by an older reasonfactory; "
            f"this one reads format {FORMAT} only: start the loop in a new workdir (or move "
            f"{path.parent} away)"
        )
    results = {}
    for stage, entry in (data.get("stages") or {}).items():
        fields = dict(entry) if isinstance(entry, dict) else {}
        kind = RESULTS.get(fields.pop("type", None))
        if kind is None:
            raise UserError(f"{path}: stage {stage!r}: 'type' must be one of {', '.join(RESULTS)}")
        try:
            results[stage] = TypeAdapter(kind).validate_python(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or kind.__name__
            raise UserError(f"{path}: stage {stage!r}: {where}: {first['msg']}") from None
    return results
