"""The local runtime's composition root: the world (shared/wiring.py), SAQ queues, workers and watchers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from saq import Worker

from local_runtime.watchers import PriceWatcher, fire_now
from shared.adapters.redis_triggers import RedisTriggerIndex
from shared.adapters.queue_port import queue_port
from shared.adapters.saq_queue import SaqQueues
from shared.context import Context, Queues
from shared.db.upkeep import vacuum_bloated
from shared.settings import Settings
from shared.venues.market import Market
from shared.wiring import World, connect_world


@dataclass
class Engine:
    settings: Settings
    world: World
    queues: SaqQueues | Queues
    watcher: PriceWatcher
    workers: list[Worker] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.world.pool

    @property
    def redis(self) -> Redis:
        return self.world.redis

    @property
    def ctx(self) -> Context:
        return self.world.ctx

    @property
    def market(self) -> Market:
        return self.world.market

    @property
    def triggers(self) -> RedisTriggerIndex:
        return self.world.triggers

    async def run_workers(self, steps: Iterable[str]) -> None:
        """SAQ workers for these steps, and the reconciler with them (none if `steps` is empty)."""
        steps = tuple(steps)
        if steps and not isinstance(self.queues, SaqQueues):
            raise ValueError("workers run on SAQ: with DEX_QUEUE_BACKEND=sqs start the web process with --workers none "
                             "and let the queue triggers (cloud/) run the functions")
        self.workers = self.queues.workers(self.ctx, steps) if steps else []
        if self.workers:
            self.workers.append(self.queues.reconciler(self.ctx, functools.partial(vacuum_bloated, self.pool)))
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.start(), name=f"worker-{worker.queue.name}"))

    def run_watchers(self) -> None:
        """Price drift (firing limit orders on every change), random launches and expiry checks, in this process."""
        sim = self.settings.sim
        if sim.drift_interval_ms > 0:
            self._tasks.append(asyncio.create_task(self.watcher.run_drift(sim.drift_interval_ms / 1000)))
        if sim.launch_interval_ms > 0:
            self._tasks.append(asyncio.create_task(self.watcher.run_launches(sim.launch_interval_ms / 1000)))
        self._tasks.append(asyncio.create_task(self.watcher.run_expiry(self.settings.trigger_poll_ms / 1000)))

    async def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queues.disconnect()
        await self.world.close()  # sends what the publisher still holds, then closes Redis and PostgreSQL


async def start_engine(settings: Settings) -> Engine:
    world = await connect_world(settings)
    queues = queue_port(settings)
    await queues.connect()
    ctx = world.ctx
    watcher = PriceWatcher(world.market, ctx.venues, ctx.tokens, world.triggers, queues, ctx.clock,
                           functools.partial(fire_now, ctx, queues))
    return Engine(settings, world, queues, watcher)
