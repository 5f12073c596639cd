"""The order record and the repository port the functions persist it through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from shared.domain.events import Event
from shared.domain.states import Status

UPDATABLE_FIELDS = frozenset(
    {"min_amount_out", "venue", "plan", "tx_signature", "amount_out", "filled_amount_in", "executed_price",
     "failure_reason", "attempts"}
)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    client_id: str
    kind: str
    side: str
    status: Status
    base_mint: str
    quote_mint: str
    input_mint: str
    output_mint: str
    amount_in: int
    slippage_bps: int
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = None
    request_hash: str | None = None
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    conditions: dict[str, Any] | None = None
    """A sniper order's safety checks (minLiquidity, maxPrice, maxPriceImpactBps)."""
    min_amount_out: int | None = None
    venue: str | None = None
    plan: dict[str, Any] | None = None
    tx_signature: str | None = None
    amount_out: int | None = None
    filled_amount_in: int | None = None
    """What the order sold: `amount_in`, or less when only some legs of a split landed."""
    executed_price: Decimal | None = None
    failure_reason: str | None = None
    attempts: int = 0
    last_seq: int = 0


class OrderRepository(Protocol):
    async def create(self, order: OrderRecord, data: dict[str, Any]) -> Event | None:
        """Store a new order in status pending with its first event (seq 1); None if the
        client already has an order with this idempotency key (nothing is written)."""
        ...

    async def find_by_key(self, client_id: str, idempotency_key: str) -> OrderRecord | None: ...

    async def transition(
        self, order_id: str, new: Status, at: datetime, data: dict[str, Any], changes: dict[str, Any],
        only_from: frozenset[Status] | None = None,
    ) -> Event | None:
        """Move the order to `new` if the state table allows it from its current status (and,
        with `only_from`, that status is one of those), apply `changes` and append the event
        with the next seq, atomically. Returns None (and changes nothing) otherwise."""
        ...

    async def get(self, order_id: str) -> OrderRecord | None: ...

    async def moving_since(self, before: datetime, limit: int, statuses: frozenset[Status]) -> list[OrderRecord]:
        """Orders in one of these pipeline statuses (pending, triggered, routing … submitted) not
        updated since `before`, oldest first."""
        ...

    async def overdue(self, before: datetime, limit: int) -> list[OrderRecord]:
        """Waiting orders whose expiry is before `before`."""
        ...

    async def waiting_after(self, after_id: str | None, limit: int) -> list[OrderRecord]:
        """A page of waiting orders in id order, after `after_id`."""
        ...

    async def events(self, order_id: str, after_seq: int = 0) -> list[Event]: ...

    async def event(self, order_id: str, status: Status) -> Event | None:
        """The event that moved the order to `status`, if any."""
        ...
