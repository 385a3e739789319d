"""Who runs a run's shards (`ShardRunner`), and the streaming scheduler over them.

A runner generates and filters shards on its engine(s) and hands back a `ShardResult` per
shard (flows/shards.py); it never stores (flows/committer.py does). Two runners:
- `LocalRunner` (the default): one engine in this process; each shard is a Prefect task in
  the flow's task threads, so shards overlap (one generates while the last one is filtered).
- `RayRunner` (`runner: {kind: ray}`, flows/ray_runner.py): engine replicas as Ray actors.

`stream` hands shards to a runner and yields their results in the order they finish: up to
`lookahead` shards generate at once, and one more whenever the runner `wants_more` (the
`openai` engine's slots are about to idle). A slow shard holds no other back: the ones after
it finish and are stored. `check` runs at least every `WAIT_S` while it waits: where a
Ctrl-C is raised (flows/interrupts.py).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Protocol

import polars as pl
from prefect import task
from prefect.cache_policies import NONE
from reasonfactory.flows.shards import ShardResult, process_shard
from reasonfactory.generators.base import RunContext
from reasonfactory.generators.engines import make_engine
from reasonfactory.generators.engines.cached import Sink
from reasonfactory.generators.engines.metered import EngineMeter, MeteredEngine
from reasonfactory.warehouse.store import Warehouse

WAIT_S = 0.25  # how long the flow's thread waits on its shards before it looks for a Ctrl-C


class ShardRunner(Protocol):
    """Generates and filters shards; `submit` returns a future of the shard's `ShardResult`."""

    model: str

    def submit(self, shard: pl.DataFrame) -> Future: ...

    def generating(self) -> int:
        """Shards handed over whose generation is not over."""
        ...

    def wants_more(self) -> bool:
        """The engine would idle without another shard now (beyond `lookahead`)."""
        ...

    def lookahead(self) -> int:
        """Shards to generate at once when the recipe does not say."""
        ...

    def meter(self) -> EngineMeter:
        """What the engine(s) did so far: calls, requests, completions, tokens, seconds."""
        ...

    def describe(self) -> dict:
        """Extra summary fields of this runner (e.g. its start-up time)."""
        ...

    def cancel(self) -> None:
        """Ctrl-C: stop the requests in flight now, not after their replies."""
        ...

    def close(self) -> None: ...


@task(cache_policy=NONE)
def run_shard(shard, engine, recipe, ctx, lookup, sink, generated_hook) -> ShardResult:
    """One shard, generated and filtered (a Prefect task: a thread of the flow's runner)."""
    return process_shard(shard, engine, recipe, ctx, lookup, sink, generated_hook)


class LocalRunner:
    """The engine in this process. Stored samples are looked up only when some may exist
    (`lookups`: this engine has stored completions) or the shard redoes a problem."""

    def __init__(self, recipe, run_id: str, wh: Warehouse, sink: Sink, redo: set[str], lookups):
        self.recipe, self.run_id = recipe, run_id
        self.wh, self.sink, self.lookups = wh, sink, lookups
        self.redo = pl.Series(sorted(redo), dtype=pl.String)
        self.engine: MeteredEngine | None = None  # built with the first shard: none, none
        self._generating = 0
        self._lock = threading.Lock()

    def _engine(self) -> MeteredEngine:
        if self.engine is None:
            self.engine = MeteredEngine(make_engine(self.recipe.engine))
            self.model = self.engine.model
            self.ctx = RunContext(
                run_id=self.run_id, fingerprint=self.recipe.fingerprint, model=self.model
            )
        return self.engine

    def _lookup(self, keys: list[str]) -> pl.DataFrame:
        return self.wh.fetch("completions", pl.DataFrame({"request_key": keys}))

    def submit(self, shard: pl.DataFrame) -> Future:
        redoes = self.redo.len() > 0 and bool(shard["problem_id"].is_in(self.redo.implode()).any())
        lookup = self._lookup if self.lookups or redoes else None
        with self._lock:
            self._generating += 1
        engine = self._engine()
        prefect_future = run_shard.submit(
            shard, engine, self.recipe, self.ctx, lookup, self.sink, self._generated
        )
        # Prefect's own future resolves to a State; the scheduler wants the shard's result.
        future: Future = Future()

        def resolved(_) -> None:
            try:
                future.set_result(prefect_future.result())
            except BaseException as exc:
                future.set_exception(exc)

        prefect_future.add_done_callback(resolved)
        return future

    def _generated(self) -> None:
        with self._lock:
            self._generating -= 1

    def generating(self) -> int:
        return self._generating

    def wants_more(self) -> bool:
        # An engine that counts the requests waiting for its slots (openai) takes the next
        # shard whenever fewer than `concurrency` wait: with heavy-tailed replies a fixed
        # count of shards ahead leaves slots idle while a few shards sit on their stragglers
        # (measured: 0.77-0.89x of a plain asyncio client with 3 shards ahead,
        # bench/bench_streaming.py).
        return self.engine is not None and self.engine.wants_more()

    def lookahead(self) -> int:
        return 1  # the engine works while the last shard is filtered and stored

    def meter(self) -> EngineMeter:
        return self.engine.meter if self.engine is not None else EngineMeter()

    def describe(self) -> dict:
        return {}

    def cancel(self) -> None:
        if self.engine is not None:
            self.engine.cancel()

    def close(self) -> None:
        pass


def stream(
    shards: list[pl.DataFrame],
    runner: ShardRunner,
    lookahead: int,
    grow: bool = False,
    check: Callable[[], None] = lambda: None,
) -> Iterator[ShardResult]:
    """The shards' results in the order they finish (see the module docstring). With
    `lookahead` 0 the shards run one at a time, the next once the caller is done with the
    last; only with `grow` (the recipe fixes no count) does it grow when the runner
    `wants_more`."""
    todo = deque(shards)
    running: set[Future] = set()
    while todo or running:
        asked = False  # at most one shard per pass for `wants_more`: its requests count then
        while todo:
            if lookahead == 0:
                room = not running
            else:
                room = runner.generating() < lookahead
                if not room and grow and not asked and runner.wants_more():
                    room = asked = True
            if not room:
                break
            running.add(runner.submit(todo.popleft()))
        finished, _ = wait(running, timeout=WAIT_S, return_when=FIRST_COMPLETED)
        for future in finished:
            running.discard(future)
            yield future.result()
        check()
