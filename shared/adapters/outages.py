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
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,  # a shutdown ends its connections (57P01, 57P02)
    asyncpg.InternalClientError,  # a pooled connection whose server died mid-operation (seen after a SIGKILL)
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def service_name(exc: BaseException) -> str:
    """Which service an error of SERVICE_ERRORS comes from."""
    return "Redis" if isinstance(exc, redis.exceptions.RedisError) else "PostgreSQL"


def unavailable_message(exc: BaseException) -> str:
    """A refused submission's answer. Should the commit have gone through as the connection died, the
    same idempotency key (or clientOrderId) gets the stored order back instead of a second one."""
    return (f"{service_name(exc)} is unavailable ({type(exc).__name__}); nothing was accepted, retry shortly with"
            " the same Idempotency-Key or clientOrderId")
