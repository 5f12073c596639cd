"""Publishing stored events on Redis pub/sub, one channel per order."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.events import Event, encode_event


def event_channel(namespace: str, order_id: str) -> str:
    return f"{namespace}:events:{order_id}"


class RedisPublisher:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace

    async def publish(self, event: Event) -> None:
        await self._redis.publish(event_channel(self._namespace, event.order_id), encode_event(event))
