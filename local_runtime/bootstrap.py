"""The local runtime's composition root: the world (shared/wiring.py), SAQ queues, workers, the
watchers and the market driver (which drives the shared market while this process holds its lease)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from saq import Worker

from functions.market_driver import LEASE_TTL_MS, MarketDriver, PriceWatcher, fire_now
from shared.adapters.redis.lease import RedisLease
from shared.adapters.redis.resting_index import RedisTriggerIndex
from shared.adapters.queues import queue_port
from shared.adapters.queues.saq import SaqQueues
from shared.context import Context, Queues
from shared.adapters.postgres.upkeep import vacuum_bloated
from shared.settings import Settings
from shared.adapters.postgres.market_store import PgMarketStore
from shared.wiring import World, connect_world


@dataclass
class Engine:
    settings: Settings
    world: World
    queues: SaqQueues | Queues
    watcher: PriceWatcher
    driver: MarketDriver
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
    def market(self) -> PgMarketStore:
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

    def run_driver(self) -> None:
        """Contend for the market lease; while this process holds it, it drives the shared market
        (drift firing limit orders, random launches, expiry checks)."""
        self._tasks.append(asyncio.create_task(self.driver.run(), name="market-driver"))

    async def close(self) -> None:
        await self.driver.close()
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
    watcher = PriceWatcher(world.market, ctx.tokens, world.triggers, queues, ctx.clock,
                           functools.partial(fire_now, ctx, queues), random.Random(settings.sim.seed + 3), time.time)
    lease = RedisLease(world.redis, f"{settings.namespace}:market-driver", f"{socket.gethostname()}:{os.getpid()}",
                       LEASE_TTL_MS)
    driver = MarketDriver(lease, watcher, settings.sim, settings.trigger_poll_ms / 1000)
    return Engine(settings, world, queues, watcher, driver)
