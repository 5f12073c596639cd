"""Which errors mean Redis or PostgreSQL is down, and how to say so: an order is acknowledged
only once it is stored, so when PostgreSQL is down intake refuses (503) instead of taking an
order it cannot keep; clients retry with their idempotency key."""

from __future__ import annotations

import asyncpg
import redis.exceptions

SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # connection refused / reset, and TimeoutError
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def unavailable_message(exc: BaseException) -> str:
    service = "Redis" if isinstance(exc, redis.exceptions.RedisError) else "PostgreSQL"
    return f"{service} is unavailable ({type(exc).__name__}); nothing was accepted, retry shortly"
