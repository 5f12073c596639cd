"""Following one order's events: subscribe, replay what PostgreSQL has after `after_seq`, then
forward live events in seq order, repairing any gap from PostgreSQL, until a terminal event.

While the follower waits for the next live event, the one it expects (the next seq, nothing
queued before it) is handed on by the hub's reader itself (`deliver_now`), without waking the
follower: six task switches fewer per order. Anything else (a gap, a repeat, a nudge, a full
outbox) takes the queue and wakes it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from local_runtime.hub import EventHub, Subscription
from shared.domain.events import Event, RelayedEvent
from shared.ports import OrderRepository
from shared.domain.states import TERMINAL_STATUSES

CATCH_UP_INTERVAL_S = 5.0
"""With no live event for this long, look in PostgreSQL anyway (a publish may have been lost)."""


async def follow_order(
    order_id: str,
    after_seq: int,
    hub: EventHub,
    orders: OrderRepository,
    deliver: Callable[[Event | RelayedEvent], Awaitable[None]],
    watcher: Subscription | None = None,
    deliver_now: Callable[[Event | RelayedEvent], bool] | None = None,
) -> None:
    """With `watcher` (subscribed before the order was created, so nothing can have been
    published before it), there is nothing to replay: events arrive live from seq 1.
    `deliver_now` delivers without waiting, or returns False if it cannot (then `deliver` does)."""
    fresh = watcher is not None
    watcher = watcher or await hub.watch(order_id)
    last = after_seq
    parked = finished = False  # waiting on the queue; the terminal event went out directly

    async def catch_up() -> bool:
        nonlocal last
        for event in await orders.events(order_id, last):
            await deliver(event)
            last = event.seq
            if event.status in TERMINAL_STATUSES:
                return True
        return False

    async def ended_before() -> bool:
        """The client asked for events after the terminal one: nothing will ever come."""
        stored = await orders.events(order_id, 0)
        return bool(stored) and stored[-1].status in TERMINAL_STATUSES and stored[-1].seq <= last

    def direct(event: Event | RelayedEvent | None) -> bool:
        nonlocal last, finished
        if not parked or finished or watcher.lagged or event is None or event.seq != last + 1:
            return False
        if not deliver_now(event):
            return False
        last = event.seq
        quiet.heard()
        if event.status in TERMINAL_STATUSES:
            finished = True
            watcher.nudge()  # wake the follower to end the stream
        return True

    quiet = _Quiet(watcher)
    if deliver_now is not None:
        watcher.direct = direct
    try:
        if not fresh and await catch_up():
            return
        if last == after_seq > 0 and await ended_before():
            return
        while True:
            parked = True
            try:
                event = await watcher.queue.get()
            finally:
                parked = False
            if finished:
                return
            if event is not None:
                quiet.heard()
            if event is None or watcher.lagged or event.seq > last + 1:
                watcher.lagged = False
                if await catch_up():
                    return
                if event is None and last == after_seq > 0 and await ended_before():
                    return
                continue
            if event.seq <= last:
                if event.status in TERMINAL_STATUSES:
                    return  # the order ended at or before the seq the client asked to start after
                continue
            await deliver(event)
            last = event.seq
            if event.status in TERMINAL_STATUSES:
                return
    finally:
        watcher.direct = None
        quiet.cancel()
        await hub.unwatch(watcher)


class _Quiet:
    """Nudges the watcher (a None on its queue) after CATCH_UP_INTERVAL_S without a live event.
    One timer per stream, moved only when it fires: an event just pushes the deadline back
    (`wait_for` would make a task per event on Python 3.11, `asyncio.timeout` a timer)."""

    def __init__(self, watcher: Subscription) -> None:
        self._watcher = watcher
        self._loop = asyncio.get_running_loop()
        self.heard()
        self._timer = self._loop.call_at(self._deadline, self._fire)

    def heard(self) -> None:
        self._deadline = self._loop.time() + CATCH_UP_INTERVAL_S

    def _fire(self) -> None:
        if self._loop.time() >= self._deadline:
            self._watcher.nudge()
            self.heard()
        self._timer = self._loop.call_at(self._deadline, self._fire)

    def cancel(self) -> None:
        self._timer.cancel()
