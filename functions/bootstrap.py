"""The one composition root (Cosmic Python's `bootstrap`): every adapter the settings name and
the services built on them, once per process; the local runtime, the cloud functions and the
tests all get theirs here, the tests passing fakes for any part.

`bootstrap(settings, **overrides)` connects what it must (PostgreSQL, Redis), creates the shared
world if the database has none, and connects the queues; `assemble(settings, **overrides)` is the
same assembly without connecting anything, for tests that pass a fake for every part with I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from redis.asyncio import Redis

from functions import reconcile
from functions.delivery import Outcome, deliver
from functions.desk import OrderDesk
from functions.market_driver import LEASE_TTL_MS, MarketDriver, PriceWatcher, fire_now
from functions.pipeline import PIPELINE, message_key, step_for
from shared.adapters.clock import SystemClock, TimeOrderedIds
from shared.adapters.metrics import NullMetrics, prometheus_metrics
from shared.adapters.outages import SERVICE_ERRORS
from shared.adapters.postgres.api_keys import PgApiKeys
from shared.adapters.postgres.connection import connect_postgres
from shared.adapters.postgres.market_store import PgMarketStore
from shared.adapters.postgres.repository import PgOrderRepository
from shared.adapters.postgres.upkeep import upkeep as table_upkeep
from shared.adapters.queues import queue_port
from shared.adapters.redis.admission import RedisClientLimits
from shared.adapters.redis.connection import new_redis
from shared.adapters.redis.lease import RedisLease
from shared.adapters.redis.publisher import PublisherSettlingSlots
from shared.adapters.redis.resting_index import RedisRestingIndex
from shared.adapters.sim.chain import SimulatedChain
from shared.adapters.sim.venues import SimulatedVenues
from shared.context import Context
from shared.domain.market import Market
from shared.domain.tokens import TokenRegistry
from shared.ports import ApiKeys, ClientLimits, MarketStore, Metrics, OrderRepository, Publisher, Queues, RestingIndex
from shared.settings import Settings

log = logging.getLogger("engine")
_WITH_POSTGRES = ("orders", "market", "keys")
_WITH_REDIS = ("publisher", "resting", "limits", "lease", "keys")


@dataclass
class Services:
    """What one process runs on: the functions' Context and what the entry points need beside it."""

    settings: Settings
    ctx: Context
    queues: Queues
    market: MarketStore
    """The shared simulated world."""
    resting: RestingIndex
    limits: ClientLimits
    keys: ApiKeys
    desk: OrderDesk
    watcher: PriceWatcher
    driver: MarketDriver
    pool: asyncpg.Pool | None = None
    redis: Redis | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)
    workers: list[Any] = field(default_factory=list)

    async def run_workers(self, steps: Iterable[str], reconciler: bool = True) -> None:
        """Workers for these steps in this process, and the reconciler with them (none if `steps` is
        empty). Only a queue transport that runs its own workers can (SAQ; SQS runs Lambdas)."""
        steps = tuple(steps)
        if not steps:
            return
        serve = getattr(self.queues, "workers", None)
        if serve is None:
            raise ValueError("workers run on SAQ: with DEX_QUEUE_BACKEND=sqs start the web process with --workers none "
                             "and let the queue triggers (cloud/) run the functions")
        self.workers = serve(steps, self._deliver)
        if reconciler:
            upkeep = None if self.pool is None else functools.partial(table_upkeep, self.pool)
            self.workers.append(self.queues.reconciler(functools.partial(reconcile.run_round, self.ctx, self.queues),
                                                       upkeep))
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.start(), name=f"worker-{worker.queue.name}"))

    async def _deliver(self, step: str, bodies: list[str], attempt: int) -> list[bool]:
        outcomes = await deliver(step, bodies, [attempt] * len(bodies), self.ctx, self.queues.send)
        return [outcome is Outcome.AGAIN for outcome in outcomes]

    def run_driver(self) -> None:
        """Contend for the market lease; while this process holds it, it drives the shared market."""
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
        await self.ctx.publisher.flush()  # what the publisher still holds goes out before Redis closes
        if self.redis is not None:
            await self.redis.aclose()
        if self.pool is not None:
            await self.pool.close()


async def bootstrap(settings: Settings, min_connections: int = 2, **overrides: Any) -> Services:
    """Connect PostgreSQL and Redis (unless every part using them is overridden), build the rest,
    create the shared world if the database has none yet, and connect the queues."""
    pool = None
    if any(part not in overrides for part in _WITH_POSTGRES):
        pool = await connect_postgres(settings.database_url, min_connections, settings.db_pool_size)
    redis = None
    if any(part not in overrides for part in _WITH_REDIS):
        redis = new_redis(settings.redis_url, settings.redis_pool_size)
    services = assemble(settings, pool=pool, redis=redis, **overrides)
    if "market" not in overrides:
        await services.market.seed(Market.initial())  # the first process creates the world; later ones join it
    await services.queues.connect()
    return services


def _publisher(settings: Settings, redis: Redis | None, orders: OrderRepository, metrics: Metrics) -> Publisher:
    """Events to Redis pub/sub (settling in-flight slots); where an API Gateway WebSocket stage is named
    (DEX_WS_MANAGEMENT_URL: the cloud functions), also posted to the connections following each order."""
    published = PublisherSettlingSlots(redis, settings.namespace, max_batch=settings.batch_max, metrics=metrics)
    if not settings.ws_management_url:
        return published
    from shared.adapters.aws.socket_fanout import SocketFanout  # boto3: only where a stage is named

    return SocketFanout.from_settings(settings, redis, orders, published)


def assemble(settings: Settings, pool: asyncpg.Pool | None = None, redis: Redis | None = None,
             **overrides: Any) -> Services:
    """Every part, real or given: `orders`, `publisher`, `resting`, `market`, `venues`, `chain`,
    `tokens`, `clock`, `ids`, `queues`, `limits`, `keys`, `lease`, `now_s`, `sleep`, `log`, `metrics`."""

    def part(name: str, build):
        return overrides[name] if name in overrides else build()

    ns, batch = settings.namespace, settings.batch_max
    now_s = part("now_s", lambda: time.time)
    sleep = part("sleep", lambda: asyncio.sleep)
    clock = part("clock", SystemClock)
    market = part("market", lambda: PgMarketStore(pool, now_s=now_s, max_batch=batch))
    resting = part("resting", lambda: RedisRestingIndex(redis, ns, max_batch=batch))
    queues = part("queues", lambda: queue_port(settings, step_for, message_key, PIPELINE))
    # Prometheus where something scrapes it (the local runtime's processes, through the metrics
    # directory); a cloud function (SQS) counts nothing.
    metrics = part("metrics", lambda: NullMetrics() if settings.queue_backend == "sqs"
                   else prometheus_metrics(settings.metrics_dir))
    orders = part("orders", lambda: PgOrderRepository(pool, max_batch=batch))
    ctx = Context(
        orders=orders,
        publisher=part("publisher", lambda: _publisher(settings, redis, orders, metrics)),
        resting=resting,
        venues=part("venues", lambda: SimulatedVenues(market, settings.sim, now_s=now_s, sleep=sleep)),
        chain=part("chain", lambda: SimulatedChain(market, settings.sim, sleep=sleep, now_s=now_s)),
        tokens=part("tokens", lambda: TokenRegistry(source=market)),
        clock=clock,
        ids=part("ids", TimeOrderedIds),
        settings=settings,
        log=part("log", lambda: log),
        metrics=metrics,
        outages=SERVICE_ERRORS,
    )
    limits = part("limits", lambda: RedisClientLimits(redis, ns, batch))
    watcher = PriceWatcher(market, ctx.tokens, resting, queues, clock, functools.partial(fire_now, ctx, queues),
                           random.Random(settings.sim.seed + 3), now_s)
    lease = part("lease", lambda: RedisLease(redis, f"{ns}:market-driver", f"{socket.gethostname()}:{os.getpid()}",
                                             LEASE_TTL_MS))
    return Services(
        settings=settings, ctx=ctx, queues=queues, market=market, resting=resting, limits=limits,
        keys=part("keys", lambda: PgApiKeys(pool, redis, ns, cache_ttl_s=settings.key_cache_ttl_s)),
        desk=OrderDesk(ctx, queues, limits), watcher=watcher,
        driver=MarketDriver(lease, watcher, settings.sim, settings.expiry_poll_ms / 1000),
        pool=pool, redis=redis,
    )
