"""The publisher port for API Gateway WebSockets: each stored event is also posted to the
connections following its order, in seq order, with nothing held open between invocations (a
Lambda cannot hold a Redis subscription).

Whichever function records an event hands it over here, as to the Redis publisher (which this one
wraps: pub/sub for local followers, and the in-flight slots settled). One sender task takes what
was handed over, in order, and for each of its orders claims, in one script call, the
(connection, order) pairs whose lock is free (shared/adapters/redis/socket_registry.py); each
claimed pair gets the events after its cursor — the ones at hand if they follow on from it, else
read from PostgreSQL — posted one after another, then the cursor moves on. A pair another function
is posting is marked for its holder to look again. So every connection gets its order's events
gapless, in seq order and once, however many functions record them at the same time; a subscribe
(`after` N) takes the same lock to replay, so its replay and the live posts interleave in order.

A connection that is gone (410) is forgotten. A post that fails otherwise (throttled past
botocore's retries, a timeout) stops that pair where it was: its cursor stays before the event, so
the next event of the order posts the missed ones first, and a client's subscribe with `after`
recovers them in any case.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis

from shared.adapters.aws.management_api import Gone, ManagementApi
from shared.adapters.batching import Backlog
from shared.adapters.redis.socket_registry import Claim, Finish, SocketRegistry
from shared.domain.events import Event, encode_event
from shared.domain.states import TERMINAL_STATUSES
from shared.ports import OrderRepository, Publisher
from shared.settings import Settings

log = logging.getLogger("engine.sockets")
FIRST_WAIT_S = 0.005
LONGEST_WAIT_S = 0.1


class StreamBusy(Exception):
    """A subscribe could not take its (connection, order) in time: posts kept holding it."""


def to_post(cursor: int, known: Sequence[Event]) -> list[Event] | None:
    """Which of the events at hand (one order's, in seq order) to post after `cursor`; None when they
    cannot tell (none at hand, or a gap before or between them): then read the stored ones."""
    if not known:
        return None
    fresh = [event for event in known if event.seq > cursor]
    if any(event.seq != cursor + 1 + n for n, event in enumerate(fresh)):
        return None
    return fresh


class SocketFanout:
    def __init__(self, registry: SocketRegistry, api: ManagementApi, orders: OrderRepository, published: Publisher,
                 max_batch: int = 256) -> None:
        """`published`: the publisher every event also goes to (Redis)."""
        self.registry = registry
        self._api = api
        self._orders = orders
        self._published = published
        self._backlog: Backlog[Event] = Backlog(self._fan_out, self._not_posted, max_batch)

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis, orders: OrderRepository, published: Publisher
                      ) -> SocketFanout:
        return cls(SocketRegistry(redis, settings.namespace), ManagementApi.from_settings(settings), orders,
                   published, settings.batch_max)

    async def publish(self, event: Event) -> None:
        await self._published.publish(event)
        self._backlog.put(event)

    async def flush(self) -> None:
        await self._backlog.flush()
        await self._published.flush()

    async def subscribe(self, connection_id: str, order_id: str, after: int, finished: bool = False) -> bool:
        """Post the order's stored events after seq `after`, then follow it live; False if the
        connection is unknown. Waits for a poster holding the pair (StreamBusy if it never lets go).
        `finished`: the order is over (nothing more will come), so the subscription ends with the replay."""
        token, wait = uuid.uuid4().hex, FIRST_WAIT_S
        deadline = asyncio.get_running_loop().time() + 2 * self.registry.lock_ms / 1000
        while not (taken := await self.registry.claim_from(connection_id, order_id, after, token)):
            if taken is None:
                return False
            if asyncio.get_running_loop().time() > deadline:
                raise StreamBusy(order_id)
            await asyncio.sleep(wait)
            wait = min(2 * wait, LONGEST_WAIT_S)
        await self._drain(Claim(connection_id, order_id, after), token, (), finished)
        return True

    async def send(self, connection_id: str, frame: bytes) -> bool:
        """Post one message that is not an event (an error, an acknowledgement); False if it could
        not be (a connection gone is forgotten)."""
        try:
            await self._api.post(connection_id, frame)
            return True
        except Gone:
            await self.registry.forget(connection_id)
        except Exception as exc:
            log.warning("a message to connection %s not posted (%s: %s)", connection_id, type(exc).__name__, exc)
        return False

    async def close(self, connection_id: str) -> None:
        """Close the connection and forget it."""
        await self.registry.forget(connection_id)
        await self._api.close(connection_id)

    @staticmethod
    def _not_posted(events: list[Event], exc: Exception) -> None:
        """Followers recover with a subscribe (`after`), or with the order's next event."""
        log.warning("%d events not posted to their connections (%s: %s)", len(events), type(exc).__name__, exc)

    async def _fan_out(self, events: list[Event]) -> None:
        by_order: dict[str, list[Event]] = {}
        for event in events:
            by_order.setdefault(event.order_id, []).append(event)
        token = uuid.uuid4().hex
        claims = await self.registry.claim(list(by_order), token)
        await asyncio.gather(*(self._drain(claim, token, by_order[claim.order_id]) for claim in claims))

    async def _drain(self, claim: Claim, token: str, known: Sequence[Event], finished: bool = False) -> None:
        """Holding the pair's lock: post the events after its cursor, in order, until nobody marked
        it dirty meanwhile. A failure ends it (the lock lapses, the cursor stays where it was).
        `finished`: the order was over before the lock was taken, so its stored events are all there are."""
        cursor = claim.cursor
        try:
            while True:
                events = to_post(cursor, known)
                if events is None:
                    events = await self._orders.events(claim.order_id, cursor)
                cursor, how = await self._post(claim.connection_id, events, cursor)
                if finished and how is Finish.POSTED:
                    how = Finish.ENDED  # its terminal event was at or before `after`
                if not await self.registry.finish(claim, token, cursor, how):
                    return
                known = ()
        except Exception:
            log.exception("posting order %s to connection %s failed", claim.order_id, claim.connection_id,
                          extra={"order_id": claim.order_id})

    async def _post(self, connection_id: str, events: list[Event], cursor: int) -> tuple[int, Finish]:
        """Post in order; (the last seq posted, how the round ended)."""
        for event in events:
            try:
                await self._api.post(connection_id, encode_event(event))
            except Gone:
                await self.registry.forget(connection_id)
                return cursor, Finish.FAILED
            except Exception as exc:
                log.warning("event %d of order %s not posted to connection %s (%s: %s)", event.seq, event.order_id,
                            connection_id, type(exc).__name__, exc, extra={"order_id": event.order_id})
                return cursor, Finish.FAILED
            cursor = event.seq
            if event.status in TERMINAL_STATUSES:
                return cursor, Finish.ENDED
        return cursor, Finish.POSTED
