"""One Redis subscription per process, fanned out to every socket following an order.

Every order's channel sits under the prefix of its home, the web process that took it (its id
says which). The process subscribes once to its own prefix (PSUBSCRIBE), so following one of
its own orders costs no Redis command and an order followed before it exists misses nothing;
following another process's order (a stream opened here, a reconnect to this process)
SUBSCRIBEs to that order's channel for as long as someone here follows it. So each web process
receives the events of its own orders and of those it follows, not every process's. One reader
task delivers each message to bounded per-subscription queues and drops events nobody here
follows. A subscription whose queue overflows is marked lagged and catches up from PostgreSQL
instead of losing events.

The same connection carries the process's other subscriptions (SUBSCRIBE, e.g. revoked API keys):
one handler per channel, called in the reader task. Messages published while the subscription
is down are lost, so once it is back (every channel and pattern confirmed again) the hub nudges
every subscription (its follower reads what it missed from PostgreSQL, by seq) and calls
`on_resubscribed`, whose owner does the same for its channels. An order's channel that could not
be subscribed to while Redis was away is subscribed to then; its follower meanwhile reads
PostgreSQL when it hears nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from redis.asyncio import Redis

from shared.domain.events import Event, RelayedEvent, decode_for_relay
from shared.adapters.outages import SERVICE_ERRORS
from shared.adapters.redis.publisher import event_channel, home_pattern, order_home

log = logging.getLogger("engine.hub")
WATCHER_QUEUE_SIZE = 256


ORDER_ID_LENGTH = 36
"""A channel ends with its order's id (canonical UUID text)."""


class Subscription:
    """One follower's live events of one order (several may follow one order)."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.queue: asyncio.Queue[Event | RelayedEvent | None] = asyncio.Queue(WATCHER_QUEUE_SIZE)
        """Live events; None is a nudge: nothing came for a while, look in PostgreSQL."""
        self.lagged = False
        self.direct: Callable[[Event | RelayedEvent | None], bool] | None = None
        """Set by the follower while it waits on an empty queue: takes the event on at once (True)
        or leaves it to the queue (False), so an event in order costs no task switch."""

    def offer(self, event: Event | RelayedEvent | None) -> None:
        if self.direct is not None and self.queue.empty():
            try:
                if self.direct(event):
                    return
            except Exception:  # the follower meets the same failure on the queue path, in its own task
                log.exception("handing an event of order %s on failed", self.order_id,
                              extra={"order_id": self.order_id})
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    def nudge(self) -> None:
        self.offer(None)


class EventHub:
    def __init__(self, redis: Redis, namespace: str, home: str,
                 channels: Mapping[str, Callable[[bytes], None]] | None = None,
                 on_resubscribed: Callable[[], None] | None = None) -> None:
        """`home`: this process's mark in the ids of the orders it takes. `channels`: more channels
        to SUBSCRIBE to on the same connection, each with the handler of its messages' payloads
        (called in the reader task: it must not block). `on_resubscribed`: called once a lost
        subscription is back."""
        self._redis = redis
        self._namespace = namespace
        self._home = home
        self._channels = {name.encode(): handler for name, handler in (channels or {}).items()}
        self._on_resubscribed = on_resubscribed
        self._unconfirmed = 0
        """Subscriptions sent again after a reconnection and not yet confirmed by Redis."""
        self._watchers: dict[str, set[Subscription]] = {}
        self._unsubscribed: set[str] = set()
        """Watched orders of other processes whose SUBSCRIBE failed (Redis away): sent again once back."""
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._resubscribing: asyncio.Task | None = None

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        await self._pubsub.psubscribe(home_pattern(self._namespace, self._home))
        if self._channels:
            await self._pubsub.subscribe(*self._channels)
        # Called after redis-py's own callback has sent the subscriptions again on a new connection.
        self._pubsub.connection.register_connect_callback(self._reconnected)
        self._reader = asyncio.create_task(self._read(), name="event-hub-reader")

    def _reconnected(self, _connection) -> None:
        self._unconfirmed = len(self._pubsub.channels) + len(self._pubsub.patterns)
        log.warning("event hub reconnected to Redis; subscribing again")

    def _confirmed(self) -> None:
        """A (P)SUBSCRIBE confirmation: after a reconnection, the last one means every message
        published from now on arrives; what was published before may be lost."""
        if not self._unconfirmed:
            return  # the confirmations of start()
        self._unconfirmed -= 1
        if self._unconfirmed:
            return
        for followers in self._watchers.values():
            for subscription in followers:
                subscription.nudge()  # read from PostgreSQL what was published while the subscription was down
        if self._unsubscribed and self._resubscribing is None:
            self._resubscribing = asyncio.create_task(self._subscribe_missed(), name="event-hub-resubscribe")
        if self._on_resubscribed is not None:
            try:
                self._on_resubscribed()
            except Exception:
                log.exception("on_resubscribed failed")

    async def _subscribe_missed(self) -> None:
        """SUBSCRIBE to the watched orders' channels that failed while Redis was away (a failure
        here leaves them for the next reconnection)."""
        missed, self._unsubscribed = self._unsubscribed & self._watchers.keys(), set()
        try:
            if missed:
                await self._pubsub.subscribe(*(event_channel(self._namespace, order_id) for order_id in missed))
            left = missed - self._watchers.keys()  # nobody here follows them any more
            if left:
                await self._pubsub.unsubscribe(*(event_channel(self._namespace, order_id) for order_id in left))
        except SERVICE_ERRORS:
            self._unsubscribed |= missed & self._watchers.keys()
        finally:
            self._resubscribing = None

    async def stop(self) -> None:
        for task in (self._reader, self._resubscribing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._pubsub is not None:
            if self._pubsub.connection is not None:  # it goes back to the pool: without this hub's callback
                self._pubsub.connection.deregister_connect_callback(self._reconnected)
            await self._pubsub.aclose()

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)  # block: no timer per message
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup: watchers recover from PostgreSQL by seq
                log.exception("event hub lost its subscription; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            kind = message["type"]
            if kind == "message" and message["channel"] in self._channels:
                self._dispatch(message["channel"], message["data"])
                continue
            if kind not in ("pmessage", "message"):
                if kind in ("subscribe", "psubscribe"):
                    self._confirmed()
                continue
            watchers = self._watchers.get(message["channel"][-ORDER_ID_LENGTH:].decode())
            if not watchers:
                continue
            try:
                event = decode_for_relay(message["data"])
            except Exception:
                log.error("undecodable event on %s", message["channel"])
                continue
            for watcher in watchers:
                watcher.offer(event)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        handler = self._channels[channel]
        try:
            handler(data)
        except Exception:
            log.exception("handling a message on %r failed", channel)

    async def watch(self, order_id: str) -> Subscription:
        """Follow `order_id`'s live events from now on (another process's order: SUBSCRIBE to its
        channel, once for all its followers here; with Redis away, once it is back)."""
        subscription = Subscription(order_id)
        followers = self._watchers.setdefault(order_id, set())
        followers.add(subscription)
        if len(followers) == 1 and order_home(order_id) != self._home:
            try:
                await self._pubsub.subscribe(event_channel(self._namespace, order_id))
            except SERVICE_ERRORS as exc:
                log.warning("cannot subscribe to order %s's events now (%s); once Redis is back", order_id,
                            type(exc).__name__, extra={"order_id": order_id})
                self._unsubscribed.add(order_id)
            except BaseException:
                await self.unwatch(subscription)
                raise
        return subscription

    async def unwatch(self, subscription: Subscription) -> None:
        followers = self._watchers.get(subscription.order_id)
        if followers is None:
            return
        followers.discard(subscription)
        if not followers:
            del self._watchers[subscription.order_id]
            self._unsubscribed.discard(subscription.order_id)
            if order_home(subscription.order_id) != self._home:
                with contextlib.suppress(Exception):  # gone with the connection anyway
                    await self._pubsub.unsubscribe(event_channel(self._namespace, subscription.order_id))
