"""The order record: what the engine stores of an order, and which fields a status change may set."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.states import Status

class Kind(StrEnum):
    """What an order is: executed now, resting until a price, or waiting for a launch."""

    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"


class Side(StrEnum):
    """A sell gives base for quote; a buy gives quote for base."""

    BUY = "buy"
    SELL = "sell"


class FailureReason(StrEnum):
    """Why an order did not fill (the `error` of its terminal event)."""

    SLIPPAGE = "slippage"
    """The fill would give less than the order's minimum."""
    NO_ROUTE = "no_route"
    """No venue can fill this size."""
    LIMIT_NOT_MET = "limit_price_not_met"
    """The price moved back before the fired limit order could fill at its limit."""


AUTO_KEY_PREFIX = "auto:"
"""Marks a submission key the engine made up because the client sent none."""

UPDATABLE_FIELDS = frozenset(
    {"min_amount_out", "venue", "plan", "tx_signature", "amount_out", "filled_amount_in", "executed_price",
     "failure_reason", "attempts"}
)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    client_id: str
    kind: Kind
    side: Side
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
