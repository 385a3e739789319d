"""Engine replicas on Ray (`runner: {kind: ray}`): many GPUs, many nodes, one committer.

What it does: starts a local Ray (`address: local`, with the machine's CPUs and GPUs) or
joins a cluster (`auto`, `ray://...`), places `replicas` actors, each holding one engine for
the whole run (for vllm one per GPU: `gpus_per_replica: 1`), and hands them shards, each to
the live actor with the fewest in hand. An actor generates and filters its shard
(flows/shards.py, the code a local run uses) and returns its `ShardResult` (polars frames,
Arrow underneath): the traces with their verdicts, the nodes and the engine's fresh
completions. The flow's one warehouse connection stores them exactly as for a local run
(flows/committer.py), so commits, crash safety and resume are those of a local run.
A replica that dies (its process killed, its node lost) is dropped, and the shards it held
go to the others; the run fails only when none is left.

What it does not do: write the warehouse (DuckDB has one writer per file); look up stored
samples (an actor has no warehouse: a problem redone for failed or truncated samples is
generated again); store a shard's completions before the shard comes back; ship code or
data: every node runs the same reasonfactory install, and only the flow reads the problem
files and the warehouse.

Plain Ray actors rather than prefect-ray's task runner: that runner sends each task to any
Ray worker, while an engine (a vLLM holding its weights on a GPU) must be built once per
replica and kept for the run; a Ray actor is exactly that, and the flow's own scheduler
(flows/runners.py `stream`) already overlaps shards.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future

import polars as pl
from reasonfactory.flows.shards import ShardResult, process_shard
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines import make_engine
from reasonfactory.generators.engines.metered import EngineMeter, MeteredEngine
from reasonfactory.warehouse.errors import UserError

log = logging.getLogger("reasonfactory.ray")


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

    def pid(self) -> int:
        return os.getpid()

    def run(self, shard: pl.DataFrame) -> tuple[ShardResult, EngineMeter]:
        """The shard's result, and what the engine spent generating it."""
        self.generating.acquire()
        before = EngineMeter(**vars(self.engine.meter))
        spent: list[EngineMeter] = []

        def generated() -> None:  # generation over: the next shard may generate
            after = self.engine.meter
            spent.append(EngineMeter(**{k: getattr(after, k) - v for k, v in vars(before).items()}))
            self.generating.release()

        result = process_shard(shard, self.engine, self.recipe, self.ctx, generated_hook=generated)
        return result, spent[0]


class RayRunner:
    """The run's replicas, as a `ShardRunner` (flows/runners.py). Use as a context manager:
    on exit the actors are ended, and a Ray this runner started is shut down."""

    def __init__(self, recipe, run_id: str):
        try:
            import ray
        except ImportError as exc:
            raise UserError("runner kind ray needs Ray: pip install 'reasonfactory[ray]'") from exc
        self.ray = ray
        t0 = time.perf_counter()
        cfg = recipe.runner
        self.started = False
        self.actors: list = []
        self.alive: list[bool] = []
        self.cancelled = False
        self.lost = 0
        self._meter = EngineMeter()
        self._lock = threading.Lock()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            local = cfg.address == "local"
            ray.init(
                address=None if local else cfg.address,
                # A local Ray gets the machine's own CPUs (Ray counts them), so the check
                # below is against the machine, never against the replicas asked for.
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
            self.alive = [True] * cfg.replicas
            self.in_hand = [0] * cfg.replicas
            # Waits until every replica has built its engine: a bad engine fails here, once.
            self.model = ray.get([a.model.remote() for a in self.actors])[0]
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.perf_counter() - t0  # Ray up, every engine built

    def submit(self, shard: pl.DataFrame) -> Future:
        outer: Future = Future()
        self._send(shard, outer)
        return outer

    def _send(self, shard: pl.DataFrame, outer: Future) -> None:
        with self._lock:
            live = [i for i, ok in enumerate(self.alive) if ok]
            if not live:
                outer.set_exception(
                    UserError(f"runner: all {len(self.actors)} Ray replicas died; see their logs")
                )
                return
            i = min(live, key=self.in_hand.__getitem__)
            self.in_hand[i] += 1
        inner = self.actors[i].run.remote(shard).future()
        inner.add_done_callback(lambda f: self._returned(i, shard, outer, f))

    def _returned(self, i: int, shard: pl.DataFrame, outer: Future, inner: Future) -> None:
        with self._lock:
            self.in_hand[i] -= 1
        error = inner.exception()
        if error is None:
            result, spent = inner.result()
            with self._lock:
                for k, v in vars(spent).items():
                    setattr(self._meter, k, getattr(self._meter, k) + v)
            outer.set_result(result)
        elif isinstance(error, self.ray.exceptions.RayActorError) and not self.cancelled:
            with self._lock:
                if self.alive[i]:
                    self.alive[i] = False
                    self.lost += 1
                    log.warning(
                        "Ray replica %d died (%s); its shards go to the other replicas",
                        i,
                        str(error).splitlines()[0][:200],
                    )
            self._send(shard, outer)  # the same shard, on a live replica
        else:
            outer.set_exception(error)

    def generating(self) -> int:
        return sum(self.in_hand) if self.actors else 0

    def wants_more(self) -> bool:
        return False

    def lookahead(self) -> int:
        return 3 * len(self.actors)  # each replica generates one, filters one, has one queued

    def meter(self) -> EngineMeter:
        return self._meter

    def describe(self) -> dict:
        return {"replicas_start_seconds": round(self.start_seconds, 3), "replicas_lost": self.lost}

    def cancel(self) -> None:
        """End the replicas now (Ctrl-C): shards in their hands are dropped, not awaited."""
        self.cancelled = True
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []

    def close(self) -> None:
        self.cancel()
        if self.started:
            self.ray.shutdown()
