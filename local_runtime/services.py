"""Before start-up: are Redis and PostgreSQL reachable, does the database exist, is the schema current."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ServiceUnavailable(Exception):
    """A dependency is missing; the message is one line saying which and how to fix it."""


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


async def check_redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        raise ServiceUnavailable(
            f"Redis is unreachable at {_redact(url)} ({type(exc).__name__}): start Redis or set REDIS_URL"
        ) from None
    finally:
        await client.aclose()


async def ensure_database(url: str) -> None:
    """Connect to the database, creating it (from the `postgres` database) if it does not exist."""
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            pass  # another process made it first (the catalogue's unique index may be what says so)
        finally:
            await admin.close()
        return
    except Exception as exc:
        raise _postgres_unreachable(url, exc) from None
    await connection.close()


def _postgres_unreachable(url: str, exc: Exception, hint: str = "") -> ServiceUnavailable:
    return ServiceUnavailable(
        f"PostgreSQL is unreachable at {_redact(url)} ({type(exc).__name__}): start PostgreSQL or set DATABASE_URL{hint}"
    )


def run_migrations(database_url: str) -> None:
    """Piccolo's `migrations forwards all`, in a child process so it reads this DATABASE_URL."""
    env = {**os.environ, "DATABASE_URL": database_url, "PICCOLO_CONF": "piccolo_conf"}
    result = subprocess.run(
        [sys.executable, "-m", "piccolo.main", "migrations", "forwards", "all"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise ServiceUnavailable(f"migrations failed: {' | '.join(said[-3:]) or f'exit {result.returncode}'}")


async def check_postgres(url: str) -> None:
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except Exception as exc:
        raise _postgres_unreachable(url, exc, " (and start the web process once, to create the schema)") from None
    await connection.close()


async def check_services(redis_url: str, database_url: str) -> None:
    """For processes that do not own the schema (workers): both services answer."""
    await check_redis(redis_url)
    await check_postgres(database_url)


MIGRATION_LOCK = 7_216_004_001
"""A PostgreSQL advisory lock held while migrating: processes starting together on a new
database migrate one after the other (the later ones find nothing left to do)."""


async def prepare(redis_url: str, database_url: str) -> None:
    """For the web process: both services answer, the database exists, the schema is current."""
    await check_redis(redis_url)
    await ensure_database(database_url)
    connection = await asyncpg.connect(database_url, timeout=5)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await asyncio.to_thread(run_migrations, database_url)
    finally:
        await connection.close()  # ends the session, and the lock with it
