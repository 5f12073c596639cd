"""Typed messages: what clients send, and what each function hands to the next.

Amounts are integers in base units; prices are decimal strings. Step messages carry
ids and the little the next step needs; PostgreSQL stays the source of truth.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

SlippageBps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
AssetText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AmountText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class MarketOrderRequest(
    msgspec.Struct, tag_field="type", tag="market", rename="camel", forbid_unknown_fields=True, frozen=True
):
    """A market order as a client submits it. `amount` is in the token being sold."""

    side: Literal["buy", "sell"]
    base_asset: AssetText
    quote_asset: AssetText
    amount: AmountText
    slippage_bps: SlippageBps | None = None
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


OrderRequest = MarketOrderRequest


class NewOrder(msgspec.Struct, frozen=True):
    """Input of `intake`: the client's request, who sent it, and a key unique to this
    submission (the client's order id, or one the transport made up) so that running
    intake twice on the same message stores one order."""

    request: OrderRequest
    client_id: str
    submission_key: str


class QuoteRequest(msgspec.Struct, frozen=True):
    """Input of `quote`."""

    order_id: str
    input_mint: str
    output_mint: str
    amount_in: int
    slippage_bps: int


class VenueQuote(msgspec.Struct, frozen=True, rename="camel"):
    venue: str
    pool: str
    amount_in: int
    amount_out: int
    fee: int
    price_impact: str
    liquidity: int
    """Pool depth measured in the output token's base units: the first tie-breaker."""
    latency_ms: int


class VenueFailure(msgspec.Struct, frozen=True, rename="camel"):
    venue: str
    error: str
    retryable: bool = True
    """False when asking again cannot help (the pool cannot fill this size)."""


class RouteRequest(msgspec.Struct, frozen=True):
    """Input of `route`: every venue's answer for this order."""

    order_id: str
    input_mint: str
    output_mint: str
    slippage_bps: int
    quotes: list[VenueQuote]
    failures: list[VenueFailure] = []


class Plan(msgspec.Struct, frozen=True, rename="camel"):
    venue: str
    pool: str
    input_mint: str
    output_mint: str
    amount_in: int
    expected_amount_out: int
    min_amount_out: int
    reason: str


class ExecuteRequest(msgspec.Struct, frozen=True):
    """Input of `execute`: the plan to carry out."""

    order_id: str
    plan: Plan


StepMessage = NewOrder | QuoteRequest | RouteRequest | ExecuteRequest
