"""What cannot work is said before a flow starts, in one line and well under a second: no
Prefect server, engine or shard is started first (flows/preflight.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from reasonfactory.flows.preflight import check_recipe, model_context
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.errors import UserError

BASE = {"name": "p", "problems": {"source": "builtin:arithmetic", "limit": 4}}


def _cli(tmp_path, *args, **env):
    import os

    full = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    full.update(PREFECT_HOME=str(tmp_path / "prefect"), **env)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from reasonfactory.flows.cli import main; main()", *args],
        cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc, time.monotonic() - t0


def test_a_missing_tokenizer_folder_is_one_line_before_anything_starts(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "name: tok\nproblems: {source: builtin:arithmetic, limit: 10}\n"
        "filters: [format, answer, {length: {tokenizer: ./my-model, max_tokens: 4096}}]\n"
    )
    proc, _ = _cli(tmp_path, "run", "r.yaml", "-w", "wh.duckdb")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: filter length: tokenizer './my-model' is not a folder with a tokenizer "
        "(tokenizer.json, tokenizer_config.json, tokenizer.model, vocab.json); name a local "
        "model folder, or leave tokenizer out to count UTF-8 bytes / 4"
    ]
    # Nothing ran: no server was started, no warehouse written.
    assert not (tmp_path / "prefect" / "reasonfactory-server.json").exists()
    assert not (tmp_path / "wh.duckdb").exists()


def test_checks_take_well_under_a_second(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    recipe = parse_recipe({**BASE, "engine": {"kind": "vllm", "model": str(model)}})
    t0 = time.perf_counter()
    for _ in range(20):
        check_recipe(recipe)
    assert (time.perf_counter() - t0) / 20 < 0.5


def test_a_context_longer_than_the_models_is_named(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    assert model_context(model) == 512
    long = parse_recipe(
        {**BASE, "engine": {"kind": "vllm", "model": str(model), "max_model_len": 2048}}
    )
    with pytest.raises(UserError, match="max_model_len 2048 is longer than the model's context"):
        check_recipe(long)
    check_recipe(
        parse_recipe(
            {**BASE, "engine": {"kind": "vllm", "model": str(model), "max_model_len": 512}}
        )
    )
    with pytest.raises(UserError, match="not a model folder"):
        check_recipe(
            parse_recipe({**BASE, "engine": {"kind": "vllm", "model": str(tmp_path / "x")}})
        )


def test_gpus_for_ray_on_a_machine_without_one(tmp_path, monkeypatch):
    import reasonfactory.flows.preflight as preflight

    monkeypatch.setattr(preflight, "gpu_count", lambda: 0)  # this machine, whatever it has
    gpus = parse_recipe({**BASE, "runner": {"kind": "ray", "replicas": 2, "gpus_per_replica": 1}})
    with pytest.raises(UserError, match="no GPU; on a CPU set gpus_per_replica: 0"):
        check_recipe(gpus)
    check_recipe(parse_recipe({**BASE, "runner": {"kind": "ray", "replicas": 2}}))


def test_vllm_missing_is_said_before_a_server_starts(tmp_path, monkeypatch):
    import importlib.util

    import reasonfactory.flows.preflight as preflight

    real = importlib.util.find_spec
    monkeypatch.setattr(
        preflight.importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a)
    )
    with pytest.raises(UserError, match="needs vLLM, which is not installed; install it"):
        check_recipe(parse_recipe({**BASE, "engine": {"kind": "vllm", "model": "org/name"}}))


def test_doctor_says_what_this_install_can_run_one_line_each(cli):
    proc = cli("doctor")
    lines = proc.stdout.strip().splitlines()
    assert all(line[:3] in ("ok ", "NO ") for line in lines), proc.stdout
    names = [line[4:].split(":")[0] for line in lines]
    assert names[:3] == [
        "python",
        "reasonfactory's pinned requirements",
        "vllm (engine kind vllm, eval --model, loop)",
    ]
    # CI installs vLLM with `doctor --fix`: there every check must hold.
    if os.environ.get("CI"):
        assert proc.returncode == 0 and all(line.startswith("ok ") for line in lines), proc.stdout
    else:
        assert proc.returncode == (0 if all(line.startswith("ok ") for line in lines) else 1)
