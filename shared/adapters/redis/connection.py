"""Redis clients for the engine, and forgetting one engine's keys."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def new_redis(url: str, max_connections: int) -> Redis:
    """A client whose pool waits for a free connection instead of raising when it runs out.

    Its connections skip redis-py's CLIENT SETINFO (`driver_info=None`): by default each new
    connection reads the installed package's metadata (importlib.metadata, 1-4 ms of CPU) to send
    its version in two more commands, which Redis before 7.2 refuses with an error. A pool opens
    connections when its load grows — a launch firing its snipers, a burst — so that was paid on
    the very orders the growth was for."""
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=30,
                                                                 driver_info=None))


async def forget_namespace(redis: Redis, namespace: str) -> int:
    """Delete every key of one engine namespace — queues and SAQ jobs, resting index, limits —
    as FLUSHALL would for that engine alone; returns how many."""
    deleted = 0
    for pattern in (f"{namespace}:*", f"saq:*{namespace}:*"):
        async for key in redis.scan_iter(pattern, count=10_000):
            deleted += await redis.unlink(key)
    return deleted
