"""When Redis or PostgreSQL is down: which errors mean that, and the 503 the client gets.

An order is acknowledged only once it is stored, so when PostgreSQL is down intake refuses
with 503 instead of taking an order it cannot keep; clients retry (with their idempotency
key) and work goes on when the service is back.
"""

from __future__ import annotations

import asyncpg
import redis.exceptions
from litestar import Request, Response

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


def service_unavailable(_: Request, exc: Exception) -> Response:
    return Response({"error": unavailable_message(exc), "field": None}, status_code=503, headers={"Retry-After": "1"})
