"""The composition root: builds the real Context (PostgreSQL, Redis, simulated world) once per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis
from saq import Worker

from local_runtime.watchers import PriceWatcher
from shared.adapters.redis_triggers import RedisTriggerIndex
from shared.adapters.saq_queue import SaqQueues, new_redis
from shared.chain import SimulatedChain
from shared.context import Context
from shared.db.repository import PgLedger, PgOrderRepository
from shared.publisher import RedisPublisher
from shared.settings import Settings
from shared.tokens import TokenRegistry
from shared.venues.market import Market
from shared.venues.simulated import SimulatedVenues

log = logging.getLogger("engine")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TimeOrderedIds:
    """UUIDs whose first 48 bits are the millisecond time (as UUIDv7): new orders land at the
    right end of the primary-key index instead of all over it."""

    def order_id(self) -> str:
        millis = time.time_ns() // 1_000_000
        raw = bytearray(millis.to_bytes(6, "big") + os.urandom(10))
        raw[6] = (raw[6] & 0x0F) | 0x70
        raw[8] = (raw[8] & 0x3F) | 0x80
        return str(uuid.UUID(bytes=bytes(raw)))


@dataclass
class Engine:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    ctx: Context
    queues: SaqQueues
    market: Market
    triggers: RedisTriggerIndex
    watcher: PriceWatcher
    workers: list[Worker] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def run_workers(self, steps: Iterable[str]) -> None:
        """SAQ workers for these steps, and the reconciler with them (none if `steps` is empty)."""
        self.workers = self.queues.workers(self.ctx, steps)
        if self.workers:
            self.workers.append(self.queues.reconciler(self.ctx))
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
        await self.redis.aclose()
        await self.pool.close()


async def start_engine(settings: Settings) -> Engine:
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=2, max_size=settings.db_pool_size, timeout=5, command_timeout=30
    )
    redis = new_redis(settings.redis_url, settings.redis_pool_size)
    clock = SystemClock()
    market = Market(seed=settings.sim.seed)
    venues = SimulatedVenues(market, settings.sim, now_s=time.time, sleep=asyncio.sleep)
    chain = SimulatedChain(venues, PgLedger(pool, clock.now), settings.sim, sleep=asyncio.sleep)
    triggers = RedisTriggerIndex(redis, settings.namespace)
    tokens = TokenRegistry()
    ctx = Context(
        orders=PgOrderRepository(pool),
        publisher=RedisPublisher(redis, settings.namespace),
        triggers=triggers,
        venues=venues,
        chain=chain,
        tokens=tokens,
        clock=clock,
        ids=TimeOrderedIds(),
        settings=settings,
        log=log,
    )
    queues = SaqQueues(settings)
    await queues.connect()
    watcher = PriceWatcher(market, venues, tokens, triggers, queues, clock)
    return Engine(settings, pool, redis, ctx, queues, market, triggers, watcher)
