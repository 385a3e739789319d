"""A local Ray started by the run gets the machine's CPUs: more replicas than the machine has
cores is a clear error before any worker starts (it once got as many CPUs as replicas, so the
check always passed and 64 replicas on 2 cores started 52 workers until the kernel killed
them). Its own module: the check is of a Ray the runner starts itself."""

from __future__ import annotations

import os

import pytest
import ray
from reasonfactory.flows.generate import run_recipe
from reasonfactory.flows.recipe import parse_recipe
from reasonfactory.warehouse.errors import UserError
from reasonfactory.warehouse.store import Warehouse


@pytest.mark.slow
def test_more_replicas_than_the_machine_has_cores_is_a_clear_error(prefect_api, tmp_path):
    assert not ray.is_initialized()
    cores = len(os.sched_getaffinity(0))
    replicas = cores * 32
    recipe = {
        "name": "too-many",
        "problems": {"source": "builtin:arithmetic", "limit": 8},
        "runner": {"kind": "ray", "replicas": replicas},
    }
    with pytest.raises(UserError, match=rf"{replicas} replicas need {replicas} CPUs, this Ray has"):
        run_recipe(parse_recipe(recipe), str(tmp_path / "wh.duckdb"))
    assert not ray.is_initialized()  # the Ray it started is shut down again
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        assert wh.sql("SELECT status FROM runs")["status"].to_list() == ["failed"]
