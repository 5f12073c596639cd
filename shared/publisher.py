"""Publishing stored events on Redis pub/sub, one channel per order.

An event that ends the order's active life (terminal, or resting as `waiting`) also
settles its in-flight slot (per-client admission, shared/adapters/redis_limits.py) in the
same round trip.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.batching import Coalescer
from shared.adapters.redis_limits import SETTLE_SCRIPT, inflight_prefix, owner_key
from shared.events import Event, encode_event
from shared.states import TERMINAL_STATUSES, Status

SETTLING_STATUSES = TERMINAL_STATUSES | {Status.WAITING}


def event_channel(namespace: str, order_id: str) -> str:
    return f"{namespace}:events:{order_id}"


class RedisPublisher:
    """Events published by concurrent orders travel in one pipeline (see shared/batching.py)."""

    def __init__(self, redis: Redis, namespace: str, max_batch: int = 256) -> None:
        self._redis = redis
        self._namespace = namespace
        self._batches = Coalescer(self._publish_many, max_batch=max_batch, max_in_flight=2)

    async def publish(self, event: Event) -> None:
        await self._batches.submit(event)

    async def _publish_many(self, events: list[Event]) -> list[None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(event_channel(self._namespace, event.order_id), encode_event(event))
                if event.status in SETTLING_STATUSES:
                    # EVAL, not a registered Script: redis-py checks a pipeline's scripts with
                    # SCRIPT EXISTS first, an extra round trip per batch (Redis caches the body).
                    pipe.eval(SETTLE_SCRIPT, 1, owner_key(self._namespace, event.order_id),
                              inflight_prefix(self._namespace), event.order_id)
            await pipe.execute()
        return [None] * len(events)
