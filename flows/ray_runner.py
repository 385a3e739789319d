"""Engine replicas on Ray (`runner: {kind: ray}`): many GPUs, many nodes, one committer.

What it does: starts a local Ray (`address: local`) or joins a cluster (`auto`, `ray://...`),
places `replicas` actors, each holding one engine for the whole run (for vllm one per GPU:
`gpus_per_replica: 1`), and hands them shards, each to the actor with the fewest in hand.
An actor generates and filters its shard (flows/shards.py, the code a local run uses) and
returns polars frames (Arrow underneath): the traces with their verdicts, the nodes and the
engine's fresh completions. The flow's one warehouse connection stores them exactly as for a
local run, so commits, crash safety and resume are those of flows/generate.py.

What it does not do: write the warehouse (DuckDB has one writer per file); look up stored
samples (an actor has no warehouse: a problem redone for failed or truncated samples is
generated again); ship code or data: every node runs the same reasonfactory install, and
only the flow reads the problem files and the warehouse.

Plain Ray actors rather than prefect-ray's task runner: that runner sends each task to any
Ray worker, while an engine (a vLLM holding its weights on a GPU) must be built once per
replica and kept for the run; a Ray actor is exactly that, and the flow's own scheduler
(`_streamed`) already overlaps shards.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import replace

import polars as pl
from reasonfactory.flows.shards import filter_one, generate_one
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines import make_engine
from reasonfactory.generators.engines.metered import EngineMeter, MeteredEngine
from reasonfactory.warehouse.errors import UserError


class Replica:
    """One engine, kept for the run; generates and filters the shards it is handed. Two calls
    run at once (`max_concurrency=2`) but only one generates: a shard is filtered while the
    next one generates, as in a local run, and the engine (a GPU) is never shared."""

    def __init__(self, recipe, run_id: str):
        self.recipe = recipe
        self.engine = MeteredEngine(make_engine(recipe.engine))
        self.ctx = RunContext(
            run_id=run_id, fingerprint=recipe.fingerprint, model=self.engine.model
        )
        self.generating = threading.Lock()

    def model(self) -> str:
        return self.engine.model

    def run(self, shard: pl.DataFrame):
        """(generated, fresh completions, reused, filtered traces, the engine's meter for it)."""
        with self.generating:
            before = replace(self.engine.meter)
            generated, completions, reused = generate_one(shard, self.engine, self.recipe, self.ctx)
            after = self.engine.meter
            spent = EngineMeter(
                after.calls - before.calls,
                after.requests - before.requests,
                after.completions - before.completions,
                after.seconds - before.seconds,
                after.tokens - before.tokens,
            )
        traces = filter_one(shard, generated, self.recipe)
        return generated, completions, reused, traces, spent


class Handed:
    """A shard handed to a replica: what `_streamed` waits on (`wrapped_future`, `result`)."""

    def __init__(self, future: Future):
        self.wrapped_future = future

    def result(self):
        return self.wrapped_future.result()


def done(value) -> Handed:
    """An already finished `Handed` (the filtering an actor did with its shard)."""
    future: Future = Future()
    future.set_result(value)
    return Handed(future)


class RayRunner:
    """The run's replicas; `submit(shard)` hands one over. Use as a context manager: on exit
    the actors are ended, and a Ray this runner started is shut down."""

    def __init__(self, recipe, run_id: str):
        try:
            import ray
        except ImportError as exc:
            raise UserError("runner kind ray needs Ray: pip install 'reasonfactory[ray]'") from exc
        self.ray = ray
        t0 = time.perf_counter()
        cfg = recipe.runner
        self.started = False
        self.actors = []
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            local = cfg.address == "local"
            ray.init(
                address=None if local else cfg.address,
                num_cpus=cfg.replicas if local else None,
                num_gpus=None if cfg.gpus_per_replica or not local else 0,  # GPUs: as found
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
            self.started = True
        try:
            if cfg.address == "local":  # a fixed machine: actors that cannot fit would wait forever
                have = ray.cluster_resources()
                for what, need in (
                    ("CPU", cfg.replicas),
                    ("GPU", cfg.replicas * cfg.gpus_per_replica),
                ):
                    if have.get(what, 0) < need:
                        raise UserError(
                            f"runner: {cfg.replicas} replicas need {need} {what}s, this Ray has "
                            f"{have.get(what, 0):g}; lower replicas, or join a cluster (address)"
                        )
            actor = ray.remote(num_cpus=1, num_gpus=cfg.gpus_per_replica, max_concurrency=2)(
                Replica
            )
            self.actors = [actor.remote(recipe, run_id) for _ in range(cfg.replicas)]
            self.in_hand = [0] * cfg.replicas
            self.meter = EngineMeter()
            self.lock = threading.Lock()
            # Waits until every replica has built its engine: a bad engine fails here, once.
            self.model = ray.get([a.model.remote() for a in self.actors])[0]
        except BaseException:
            self.__exit__()
            raise
        self.start_seconds = time.perf_counter() - t0  # Ray up, every engine built

    def submit(self, shard: pl.DataFrame) -> Handed:
        with self.lock:
            i = min(range(len(self.actors)), key=self.in_hand.__getitem__)
            self.in_hand[i] += 1
        future = self.actors[i].run.remote(shard).future()
        future.add_done_callback(lambda f: self._returned(i, f))
        return Handed(future)

    def _returned(self, i: int, future: Future) -> None:
        with self.lock:
            self.in_hand[i] -= 1
            if future.exception() is None:
                spent = future.result()[4]
                self.meter.calls += spent.calls
                self.meter.requests += spent.requests
                self.meter.completions += spent.completions
                self.meter.seconds += spent.seconds
                self.meter.tokens += spent.tokens

    def __enter__(self) -> RayRunner:
        return self

    def cancel(self) -> None:
        """End the replicas now (Ctrl-C): shards in their hands are dropped, not awaited."""
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []

    def __exit__(self, *exc) -> None:
        self.cancel()
        if self.started:
            self.ray.shutdown()
