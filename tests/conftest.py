"""Shared fixtures: a migrated template database per test process, a fresh database and
Redis namespace per test, so tests run in parallel without seeing each other."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from local_runtime.services import ensure_database, run_migrations
from shared.adapters.redis import connection
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings, SimulationSettings

REDIS_URL = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
DATABASE_URL = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{name}"))


def run_sync(coroutine):
    """Run a coroutine to completion from sync code, even if an event loop runs in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(database_url("postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database with every migration applied, copied for each test (CREATE DATABASE … TEMPLATE)."""
    name = f"dex_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run_sync(ensure_database(database_url(name)))
    run_migrations(database_url(name))
    yield name
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database(template_database: str) -> Iterator[str]:
    name = f"dex_t_{uuid.uuid4().hex[:12]}"
    run_sync(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield database_url(name)
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database: str) -> Iterator[Settings]:
    """Real services, an isolated database and Redis namespace, every simulated delay zero;
    afterwards nothing of the namespace is left in the shared Redis."""
    settings = Settings(
        redis_url=REDIS_URL,
        database_url=database,
        namespace=f"t{uuid.uuid4().hex[:10]}",
        worker_concurrency=20,
        job_retry_delay_ms=10,
        sim=SimulationSettings(zero_delays=True, drift_interval_ms=0),
    )
    yield settings
    run_sync(forget_namespace(settings))


@pytest_asyncio.fixture
async def engine(settings: Settings) -> AsyncIterator:
    """The composition root's services on the real PostgreSQL and Redis (no workers running)."""
    from functions.bootstrap import bootstrap

    services = await bootstrap(settings)
    try:
        yield services
    finally:
        await services.close()
        await forget_namespace(settings)


async def forget_namespace(settings: Settings) -> None:
    """The Redis server is shared by every test and run: leave nothing of a namespace behind."""
    redis = Redis.from_url(settings.redis_url)
    try:
        await connection.forget_namespace(redis, settings.namespace)
    finally:
        await redis.aclose()
