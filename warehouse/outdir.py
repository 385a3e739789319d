"""The folder an export writes: made fresh, or replaced only when an earlier export made it.

Every export leaves a marker file (`.reasonfactory-export`) in its folder. `--overwrite`
removes a folder only when that marker is there, so it never deletes a folder of someone
else's files, the current directory, a folder holding the warehouse, or a file; nor anything
through a symbolic link (`--out` that is a link is written into when empty, never removed).
Nothing here reads the warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from reasonfactory.warehouse.errors import UserError

MARKER = ".reasonfactory-export"


def check_out(out: Path, overwrite: bool, warehouse: Path | None) -> None:
    """Raise a UserError unless `out` may be written (before any query runs).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> check_out(d / "new", False, None)
    >>> (d / "notes.txt").write_text("mine")
    4
    >>> check_out(d, True, None)
    Traceback (most recent call last):
    ...
    reasonfactory.warehouse.errors.UserError: ...
    """
    if out.is_symlink() and not out.exists():
        raise UserError(
            f"--out {out} is a symbolic link to {os.readlink(out)}, which does not exist: "
            "choose a folder to export into"
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: choose a folder to export into")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise UserError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
    if out.is_symlink():  # rmtree would fail on it, and what it points to is not ours to judge
        raise UserError(
            f"--overwrite refused: {out} is a symbolic link to {out.resolve()}; nothing is "
            f"removed through a link (give --out {out.resolve()} to replace that export)"
        )
    if not (out / MARKER).is_file():
        raise UserError(
            f"--overwrite refused: {out} was not written by `reasonfactory export` (no {MARKER} "
            "file in it); remove it yourself or choose another --out"
        )
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise UserError(f"--overwrite refused: {out} is the current folder or holds it")
    if warehouse is not None and resolved in Path(warehouse).resolve().parents:
        raise UserError(f"--overwrite refused: {out} holds the warehouse {warehouse}")


def fresh_out(out: Path, overwrite: bool, warehouse: Path | None) -> None:
    """Check again, remove an earlier export when asked, and create the folder."""
    check_out(out, overwrite, warehouse)
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def mark_out(out: Path, kind: str, rows: int) -> None:
    """Leave the marker that lets a later `--overwrite` replace this folder."""
    (out / MARKER).write_text(json.dumps({"kind": kind, "rows": rows}) + "\n", encoding="utf-8")
