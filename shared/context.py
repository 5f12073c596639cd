"""Everything a function may touch, handed in by whoever runs it (local runtime, cloud, tests)."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.chain import SimulatedChain
from shared.events import Event
from shared.orders import OrderRecord, OrderRepository
from shared.settings import Settings
from shared.states import Status
from shared.tokens import TokenRegistry
from shared.venues.simulated import SimulatedVenues

current_attempt: ContextVar[int] = ContextVar("current_attempt", default=1)
"""Which delivery of the current message this is (1 = first); set by the transport adapter."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class Ids(Protocol):
    def order_id(self) -> str: ...


class Publisher(Protocol):
    async def publish(self, event: Event) -> None:
        """Hand a stored event over for delivery; it may be sent after this returns, but an
        order's events are sent in the order they were handed over."""
        ...

    async def flush(self) -> None:
        """Wait until every event handed over so far has been sent (or given up on)."""
        ...


class Queues(Protocol):
    """The queue port: hands a step's message to the function the chain table names (SAQ
    locally, SQS in the cloud)."""

    async def send(self, message: Any) -> None: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...


class TriggerIndex(Protocol):
    """Resting orders, indexed so a price change or launch touches only the orders it concerns."""

    async def arm(self, order: OrderRecord) -> None:
        """Index a waiting order by its trigger (limit price, or token to snipe) and expiry. Idempotent."""
        ...

    async def disarm(self, order: OrderRecord) -> None:
        """Remove the order from every index. Idempotent."""
        ...

    async def claim_rebuild(self) -> bool:
        """True once after the index was lost (or never built): the caller re-arms every
        waiting order from the database. False while the index is intact."""
        ...


@dataclass(frozen=True, slots=True)
class Context:
    orders: OrderRepository
    publisher: Publisher
    triggers: TriggerIndex
    venues: SimulatedVenues
    chain: SimulatedChain
    tokens: TokenRegistry
    clock: Clock
    ids: Ids
    settings: Settings
    log: logging.Logger

    async def record(
        self, order_id: str, new: Status, data: dict[str, Any], only_from: frozenset[Status] | None = None,
        **changes: Any,
    ) -> Event | None:
        """Persist a status change with its event, then hand the event to the publisher. None if
        the state table (or `only_from`) refuses the change from the order's current status
        (nothing is written)."""
        event = await self.orders.transition(order_id, new, self.clock.now(), data, changes, only_from)
        if event is not None:
            await self.publisher.publish(event)
        return event

    def attempt(self) -> int:
        return current_attempt.get()
