"""Following one order's events: subscribe, replay what PostgreSQL has after `after_seq`, then
forward live events in seq order, repairing any gap from PostgreSQL, until a terminal event.

While the follower waits for the next live event, the one it expects (the next seq, nothing
queued before it) is handed on by the hub's reader itself (`deliver_now`), without waking the
follower: six task switches fewer per order. Anything else (a gap, a repeat, a nudge, a full
outbox) takes the queue and wakes it.

An outage does not end a stream: a read of PostgreSQL that fails is tried again, with backoff,
until PostgreSQL answers (the client is told once per outage, through `on_outage`), and a hub
whose Redis subscription comes back nudges every follower to read what it missed. So once the
services return, the stream goes on from the last seq it sent: nothing missing, nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from local_runtime.hub import EventHub, Subscription
from shared.adapters.metrics import NullMetrics
from shared.adapters.outages import SERVICE_ERRORS
from shared.domain.events import Event, RelayedEvent
from shared.domain.states import TERMINAL_STATUSES
from shared.ports import Metrics, OrderRepository

CATCH_UP_INTERVAL_S = 5.0
"""With no live event for this long, look in PostgreSQL anyway (a publish may have been lost)."""

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0
"""A read that met an outage is tried again after RETRY_FIRST_S, then twice as long each time, at most
RETRY_MAX_S apart, for as long as the outage lasts."""

Deliver = Callable[[Event | RelayedEvent], Awaitable[None]]
OnOutage = Callable[[BaseException], Awaitable[None]]


async def follow_order(
    order_id: str,
    after_seq: int,
    hub: EventHub,
    orders: OrderRepository,
    deliver: Deliver,
    subscription: Subscription | None = None,
    deliver_now: Callable[[Event | RelayedEvent], bool] | None = None,
    metrics: Metrics | None = None,
    on_outage: OnOutage | None = None,
) -> None:
    """With `subscription` (made before the order was created, so nothing can have been
    published before it), there is nothing to replay: events arrive live from seq 1.
    `deliver_now` delivers without waiting, or returns False if it cannot (then `deliver` does).
    `metrics` counts the events read from PostgreSQL rather than live. `on_outage` is called with
    the error when a read of PostgreSQL first fails in an outage (the stream then waits it out)."""
    fresh = subscription is not None
    follower = _Follower(order_id, after_seq, orders, deliver, deliver_now, subscription or await hub.watch(order_id),
                         metrics or NullMetrics(), on_outage)
    try:
        await follower.run(fresh)
    finally:
        follower.close()
        await hub.unwatch(follower.subscription)


class _Follower:
    """One stream: `last` is the seq delivered last; the queue brings live events, PostgreSQL fills
    any gap."""

    def __init__(self, order_id: str, after_seq: int, orders: OrderRepository, deliver: Deliver,
                 deliver_now: Callable[[Event | RelayedEvent], bool] | None, subscription: Subscription,
                 metrics: Metrics, on_outage: OnOutage | None) -> None:
        self.order_id, self.after_seq, self.last = order_id, after_seq, after_seq
        self.orders, self.deliver, self.deliver_now, self.metrics = orders, deliver, deliver_now, metrics
        self.on_outage = on_outage
        self.subscription = subscription
        self.parked = self.finished = False  # waiting on the queue; the terminal event went out directly
        self.quiet = _Quiet(subscription)
        if deliver_now is not None:
            subscription.direct = self.direct

    async def run(self, fresh: bool) -> None:
        if not fresh and await self.catch_up():
            return
        if self.last == self.after_seq > 0 and await self.ended_before():
            return
        while not await self.next_event():
            pass

    async def next_event(self) -> bool:
        """Take the next live event (or nudge) off the queue; True once the stream is over."""
        self.parked = True
        try:
            event = await self.subscription.queue.get()
        finally:
            self.parked = False
        if self.finished:
            return True
        if event is not None:
            self.quiet.heard()
        if event is None or self.subscription.lagged or event.seq > self.last + 1:
            self.subscription.lagged = False
            if await self.catch_up():
                return True
            return event is None and self.last == self.after_seq > 0 and await self.ended_before()
        if event.seq <= self.last:
            return event.status in TERMINAL_STATUSES  # the order ended at or before where the client started
        await self.deliver(event)
        self.last = event.seq
        return event.status in TERMINAL_STATUSES

    async def catch_up(self) -> bool:
        """Deliver what PostgreSQL has after `last`; True if that reached the terminal event."""
        replayed = 0
        try:
            for event in await self.stored(self.last):
                await self.deliver(event)
                replayed += 1
                self.last = event.seq
                if event.status in TERMINAL_STATUSES:
                    return True
            return False
        finally:
            self.metrics.events_replayed(replayed)

    async def ended_before(self) -> bool:
        """The client asked for events after the terminal one: nothing will ever come."""
        stored = await self.stored(0)
        return bool(stored) and stored[-1].status in TERMINAL_STATUSES and stored[-1].seq <= self.last

    async def stored(self, after_seq: int) -> list[Event]:
        """The order's stored events after `after_seq`, waiting out an outage: read again with backoff
        until PostgreSQL answers (live events meanwhile wait on the queue)."""
        delay, told = RETRY_FIRST_S, False
        while True:
            try:
                return await self.orders.events(self.order_id, after_seq)
            except SERVICE_ERRORS as exc:  # Redis or PostgreSQL away: wait it out
                if not told and self.on_outage is not None:
                    await self.on_outage(exc)
                told = True
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MAX_S)

    def direct(self, event: Event | RelayedEvent | None) -> bool:
        """Called by the hub's reader while this stream waits: deliver the next event in order at
        once (True), or leave it to the queue (False)."""
        if not self.parked or self.finished or self.subscription.lagged or event is None \
                or event.seq != self.last + 1:
            return False
        if not self.deliver_now(event):
            return False
        self.last = event.seq
        self.quiet.heard()
        if event.status in TERMINAL_STATUSES:
            self.finished = True
            self.subscription.nudge()  # wake the follower to end the stream
        return True

    def close(self) -> None:
        self.subscription.direct = None
        self.quiet.cancel()


class _Quiet:
    """Nudges the subscription (a None on its queue) after CATCH_UP_INTERVAL_S without a live event.
    One timer per stream, moved only when it fires: an event just pushes the deadline back
    (`wait_for` would make a task per event on Python 3.11, `asyncio.timeout` a timer)."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self._loop = asyncio.get_running_loop()
        self.heard()
        self._timer = self._loop.call_at(self._deadline, self._fire)

    def heard(self) -> None:
        self._deadline = self._loop.time() + CATCH_UP_INTERVAL_S

    def _fire(self) -> None:
        if self._loop.time() >= self._deadline:
            self._subscription.nudge()
            self.heard()
        self._timer = self._loop.call_at(self._deadline, self._fire)

    def cancel(self) -> None:
        self._timer.cancel()
