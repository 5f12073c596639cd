"""Redis clients for the engine, and forgetting one engine's keys."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def new_redis(url: str, max_connections: int) -> Redis:
    """A client whose pool waits for a free connection instead of raising when it runs out."""
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=30))


async def forget_namespace(redis: Redis, namespace: str) -> int:
    """Delete every key of one engine namespace — queues and SAQ jobs, resting index, limits —
    as FLUSHALL would for that engine alone; returns how many."""
    deleted = 0
    for pattern in (f"{namespace}:*", f"saq:*{namespace}:*"):
        async for key in redis.scan_iter(pattern, count=10_000):
            deleted += await redis.unlink(key)
    return deleted
