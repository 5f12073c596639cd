"""Building the real Context — PostgreSQL, Redis, the simulated world — once per process.

Shared by every host: the local runtime (with SAQ) and the cloud entry points (with SQS).
Nothing here imports a web framework or a queue library.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import BlockingConnectionPool, Redis

from shared.adapters.redis.resting_index import RedisTriggerIndex
from shared.context import Context
from shared.adapters.postgres.market_store import PgMarketStore
from shared.adapters.postgres.repository import PgOrderRepository
from shared.adapters.redis.publisher import RedisPublisher
from shared.settings import Settings
from shared.domain.tokens import TokenRegistry
from shared.domain.market import Market
from shared.adapters.sim.venues import SimulatedChain, SimulatedVenues

log = logging.getLogger("engine")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TimeOrderedIds:
    """UUIDs whose first 48 bits are the millisecond time (as UUIDv7): new orders land at the
    right end of the primary-key index instead of all over it. Bytes 10–11 are this process's
    `home` (random per process): an order's events go to a channel under its home's prefix, so
    each web process receives the events of the orders it took, not every process's."""

    def __init__(self, home: bytes | None = None) -> None:
        self._home = home or os.urandom(2)
        self.home = self._home.hex()

    def order_id(self) -> str:
        millis = time.time_ns() // 1_000_000
        raw = bytearray(millis.to_bytes(6, "big") + os.urandom(4) + self._home + os.urandom(4))
        raw[6] = (raw[6] & 0x0F) | 0x70
        raw[8] = (raw[8] & 0x3F) | 0x80
        return str(uuid.UUID(bytes=bytes(raw)))


def new_redis(url: str, max_connections: int) -> Redis:
    """A client whose pool waits for a free connection instead of raising when it runs out."""
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=30))


async def forget_namespace(redis: Redis, namespace: str) -> int:
    """Delete every key of one engine namespace — queues and SAQ jobs, trigger index, limits —
    as FLUSHALL would for that engine alone; returns how many."""
    deleted = 0
    for pattern in (f"{namespace}:*", f"saq:*{namespace}:*"):
        async for key in redis.scan_iter(pattern, count=10_000):
            deleted += await redis.unlink(key)
    return deleted


@dataclass
class World:
    pool: asyncpg.Pool
    redis: Redis
    market: PgMarketStore
    """The shared simulated world (every process sees the same pools)."""
    triggers: RedisTriggerIndex
    ctx: Context

    async def close(self) -> None:
        await self.ctx.publisher.flush()
        await self.redis.aclose()
        await self.pool.close()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing. The engine keeps no session state (no SET, LISTEN,
    advisory locks or open cursors), and asyncpg's default reset query would cost a round trip
    and a statement after every query."""


async def connect_world(settings: Settings, min_connections: int = 2) -> World:
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=min_connections, max_size=settings.db_pool_size, timeout=5, command_timeout=30,
        reset=_keep_session,
    )
    redis = new_redis(settings.redis_url, settings.redis_pool_size)
    clock = SystemClock()
    market = PgMarketStore(pool, now_s=time.time, max_batch=settings.batch_max)
    await market.seed(Market.initial())  # the first process to start creates the world; later ones join it
    triggers = RedisTriggerIndex(redis, settings.namespace)
    ctx = Context(
        orders=PgOrderRepository(pool, max_batch=settings.batch_max),
        publisher=RedisPublisher(redis, settings.namespace, max_batch=settings.batch_max),
        triggers=triggers,
        venues=SimulatedVenues(market, settings.sim, now_s=time.time, sleep=asyncio.sleep),
        chain=SimulatedChain(market, settings.sim, sleep=asyncio.sleep),
        tokens=TokenRegistry(source=market),
        clock=clock,
        ids=TimeOrderedIds(),
        settings=settings,
        log=log,
    )
    return World(pool, redis, market, triggers, ctx)
