"""Reading recipe and settings files: UTF-8 YAML, safely.

Every problem is a `RecipeError` naming the file and, where it has one, the line: a file that
is missing, a folder, too large, not UTF-8, not valid YAML, with YAML aliases (a 1 KB alias
bomb expands to gigabytes) or a key given twice (PyYAML keeps the last one silently).

Not here: what a recipe may hold (flows/recipe.py validates it).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from reasonfactory.warehouse.errors import UserError


class RecipeError(UserError):
    """A recipe that does not validate."""


def load_recipe_data(path: str | Path):
    """A recipe file's YAML as data (see `read_recipe_file`)."""
    return read_recipe_file(Path(path))


def read_recipe_file(path: Path):
    """A recipe file's YAML as data (see `load_recipe` for the rules)."""
    if not path.exists():
        raise RecipeError(f"{path}: no such recipe file")
    if not path.is_file():
        raise RecipeError(f"{path}: is a folder, not a recipe file")
    raw = path.read_bytes()
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {len(raw)} bytes; a recipe is at most {MAX_RECIPE_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(
            f"{path} line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None
    return read_yaml(text, str(path))


MAX_RECIPE_BYTES = 1_000_000


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (a 1 KB alias bomb expands to gigabytes) and with
    repeated keys an error (PyYAML keeps the last one silently)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem=f"alias *{event.anchor} (YAML anchors and aliases are not allowed)",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                continue
            if repeated:
                raise yaml.MarkedYAMLError(
                    problem=f"key {str(key)[:60]!r} appears twice",
                    problem_mark=key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


def read_yaml(text: str, origin: str):
    """YAML text as data, with `_RecipeLoader`'s rules; errors name `origin` and the line."""
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506  (a SafeLoader subclass)
        # "\ud800" escapes make lone surrogates: not text, and nothing downstream can print it.
        json.dumps(data, default=str, ensure_ascii=False).encode("utf-8")
        return data
    except UnicodeEncodeError:
        raise RecipeError(f"{origin}: a \\ud800-\\udfff escape that is not a character") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{origin}{where}: not valid YAML ({str(problem)[:200]})") from None
    except RecursionError:
        raise RecipeError(f"{origin}: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # PyYAML's constructors raise these
        raise RecipeError(f"{origin}: not a valid value ({str(exc)[:120]})") from None


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML file that must hold a mapping (a loop, an eval recipe, training settings);
    errors name the file and, for bad YAML, the line.

    >>> try:
    ...     read_yaml_mapping("no-such.yaml", "loop file")
    ... except RecipeError as exc:
    ...     print(exc)
    no-such.yaml: no such loop file
    """
    path = Path(path)
    if not path.exists():
        raise RecipeError(f"{path}: no such {what}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RecipeError(
            f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a {what} is a mapping of keys to values")
    return data
