"""Everything a function may touch, handed in by whoever runs it (local runtime, cloud, tests)."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.chain import Landing, Transaction
from shared.domain.events import Event
from shared.domain.messages import QuoteCurve, VenueFailure, VenueQuote
from shared.domain.orders import OrderRecord, OrderRepository
from shared.settings import Settings
from shared.domain.states import Status
from shared.domain.tokens import TokenRegistry
from shared.domain.swap import SwapOutcome

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


class Venues(Protocol):
    """The DEX venues: which pairs trade, and what each venue gives for a size now."""

    async def supports(self, mint_a: str, mint_b: str) -> bool: ...

    async def price(self, mint_in: str, mint_out: str, amount_in: int, venues: list[str] | None,
                    split_steps: int, split_min_share_bps: int
                    ) -> tuple[list[VenueQuote], list[VenueFailure], list[QuoteCurve]]:
        """Every venue's quote for the whole size (or those named), its failures, and the split
        curves when a split may pay (outputs at `split_steps` sizes pairing up into splits)."""
        ...

    async def outcomes(self, mint_in: str, mint_out: str, legs: list[tuple[str, int]]) -> list[SwapOutcome]:
        """The pool math for each (venue, amount in) now."""
        ...


class Chain(Protocol):
    """Where swaps land: a signed transaction is built, sent, and lands at most once."""

    async def build(self, tx: Transaction) -> None: ...

    async def send(self, tx: Transaction) -> None: ...

    async def confirm(self, tx: Transaction, built_now: bool = False) -> Landing: ...


@dataclass(frozen=True, slots=True)
class Context:
    orders: OrderRepository
    publisher: Publisher
    triggers: TriggerIndex
    venues: Venues
    chain: Chain
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
