"""Publishing stored events on Redis pub/sub, one channel per order — and, in the same call,
settling the in-flight slots of the orders those events finish.

`publish` hands the event over and returns at once: the event is already in PostgreSQL, so
the step goes on without waiting for Redis (a publish costs a round trip, and a step records
up to three events in a row). One sender task sends what was handed over, in the order it
was handed over, as one script call per batch (PUBLISH for each event, in order, inside
Redis: one command for the client to pack and one reply to read, ~2 µs of client CPU per
event against ~10 µs as a pipeline of PUBLISHes); only one batch is in flight at a time, so
an order's events leave this process in seq order. A batch that fails is logged and dropped:
subscribers notice the gap by seq, or the silence, and read the events from PostgreSQL.
`flush` waits until everything handed over so far has been sent (a cloud function before it
returns, a process before it exits).

An event that ends the order's active life (terminal, or resting as `waiting`) frees the
order's in-flight slot (per-client admission, shared/adapters/redis/admission.py) in the same
script call: one round trip for both, which is why this publisher does two jobs; the class
says so in its name.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from shared.adapters.batching import Backlog
from shared.adapters.metrics import NullMetrics
from shared.adapters.redis.admission import SETTLE_LUA, inflight_prefix, owner_key
from shared.domain.events import Event, encode_event
from shared.domain.states import RESTING_STATUSES, TERMINAL_STATUSES
from shared.ports import Metrics

SETTLING_STATUSES = TERMINAL_STATUSES | RESTING_STATUSES
log = logging.getLogger("engine.publisher")

PUBLISH_MANY = SETTLE_LUA + """
local prefix, count = ARGV[1], tonumber(ARGV[2])
for i = 1, count do
  redis.call('PUBLISH', ARGV[1 + 2 * i], ARGV[2 + 2 * i])
end
for i = 1, #KEYS do
  settle(KEYS[i], prefix, ARGV[2 + 2 * count + i])
end
"""
"""ARGV: in-flight key prefix, event count, (channel, payload) per event, then the order id of
each settling event; KEYS: those orders' owner keys."""


def order_home(order_id: str) -> str:
    """The web process that took the order, as the order's id marks it (4 hex digits: bytes 10–11
    of the UUID, see shared/adapters/clock.py TimeOrderedIds)."""
    return order_id[24:28]


def event_channel(namespace: str, order_id: str) -> str:
    """One channel per order, under its home's prefix: the process that took the order (whose
    sockets most likely follow it) subscribes to its own prefix only."""
    return f"{namespace}:events:{order_home(order_id)}:{order_id}"


def home_pattern(namespace: str, home: str) -> str:
    """Every channel of the orders one process took."""
    return f"{namespace}:events:{home}:*"


class PublisherSettlingSlots:
    """The publisher port on Redis: each stored event to its order's channel, in order; and the
    in-flight slot of an order its event finishes (or puts to rest) freed in the same call."""

    def __init__(self, redis: Redis, namespace: str, max_batch: int = 256, metrics: Metrics | None = None) -> None:
        self._script = redis.register_script(PUBLISH_MANY)
        self._namespace = namespace
        self._max_batch = max_batch
        self._metrics = metrics or NullMetrics()
        self._backlog: Backlog[Event] = Backlog(self._publish_many, self._unpublished, max_batch)

    async def publish(self, event: Event) -> None:
        self._backlog.put(event)

    async def flush(self) -> None:
        await self._backlog.flush()

    def _unpublished(self, events: list[Event], exc: Exception) -> None:
        """Subscribers catch up from PostgreSQL."""
        log.warning("%d events not published (%s: %s)", len(events), type(exc).__name__, exc)
        self._metrics.events_unpublished(len(events))

    async def _publish_many(self, events: list[Event]) -> None:
        namespace = self._namespace
        settling = [event.order_id for event in events if event.status in SETTLING_STATUSES]
        args: list[str | int] = [inflight_prefix(namespace), len(events)]
        for event in events:
            args += (event_channel(namespace, event.order_id), encode_event(event))
        await self._script(keys=[owner_key(namespace, order_id) for order_id in settling], args=args + settling)
        self._metrics.events_published(len(events))
