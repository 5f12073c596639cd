"""Everything a function may touch, handed in by the composition root (functions/bootstrap.py):
ports only, with the fakes of the tests or the adapters of the runtime behind them."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from shared.domain.events import Event
from shared.domain.states import TERMINAL_STATUSES, Status
from shared.domain.tokens import TokenRegistry
from shared.ports import Chain, Clock, Ids, Metrics, OrderRepository, Publisher, RestingIndex, Venues
from shared.settings import Settings

current_attempt: ContextVar[int] = ContextVar("current_attempt", default=1)
"""Which delivery of the current message this is (1 = first); set by the transport adapter."""


@dataclass(frozen=True, slots=True)
class Context:
    orders: OrderRepository
    publisher: Publisher
    resting: RestingIndex
    venues: Venues
    chain: Chain
    tokens: TokenRegistry
    clock: Clock
    ids: Ids
    settings: Settings
    log: logging.Logger
    metrics: Metrics
    outages: tuple[type[BaseException], ...] = ()
    """What a call raises when Redis or PostgreSQL is away (the adapters' errors): a step failing with
    one is delivered again however many attempts it used, never given up on — the order is not at
    fault, and it must not fail because a server blinked."""

    async def record(
        self, order_id: str, new: Status, data: dict[str, Any], only_from: frozenset[Status] | None = None,
        **changes: Any,
    ) -> Event | None:
        """Persist a status change with its event, then hand the event to the publisher (and count
        a terminal change: once per order, as only one change can end it). None if the state table
        (or `only_from`) refuses the change from the order's current status (nothing is written)."""
        at = self.clock.now()
        change = await self.orders.transition(order_id, new, at, data, changes, only_from)
        if change is None:
            return None
        await self.publisher.publish(change.event)
        if new in TERMINAL_STATUSES:
            self.metrics.order_finished(change.kind, new, changes.get("failure_reason"),
                                        (at - change.created_at).total_seconds())
        return change.event

    def attempt(self) -> int:
        return current_attempt.get()
