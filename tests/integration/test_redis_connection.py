"""The engine's Redis clients (shared/adapters/redis/connection.py) on the real server: a pool
that grows under load opens its connections without redis-py's CLIENT SETINFO, whose version
lookup reads the installed package's metadata for each new connection."""

from __future__ import annotations

import asyncio

import redis.utils

from shared.adapters.redis.connection import new_redis
from tests.conftest import REDIS_URL


async def test_new_connections_skip_client_setinfo_and_the_package_metadata(monkeypatch) -> None:
    looked_up: list[str] = []
    monkeypatch.setattr(redis.utils, "get_lib_version", lambda: looked_up.append("version") or "0")
    client = new_redis(REDIS_URL, 8)
    try:
        # Five blocking reads at once hold five connections: the pool opens each now.
        await asyncio.gather(*(client.blpop([f"dex-test-empty-{n}"], timeout=0.05) for n in range(5)))
        pool = client.connection_pool
        opened = [*pool._available_connections, *pool._in_use_connections]
        assert len(opened) >= 5
        assert all(conn.driver_info is None for conn in opened)
        assert looked_up == []
        assert await client.ping()
    finally:
        await client.aclose()
