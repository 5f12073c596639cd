"""How orders look in the HTTP API (local runtime and cloud alike): the response bodies, as Structs
so that the OpenAPI document shows exactly what is sent."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from shared.domain.events import Event, format_ts
from shared.domain.orders import AUTO_KEY_PREFIX, Kind, OrderRecord, Side
from shared.domain.states import Status
from shared.domain.tokens import TokenRegistry, format_decimal

OrderId = Annotated[str, Meta(description="the order's id (a UUID)",
                              examples=["01a2115b-8a9b-7faa-9f0a-524c06abb1b7"])]
NonNegative = Annotated[int, Meta(ge=0)]
Timestamp = Annotated[str, Meta(description="ISO 8601 in UTC, milliseconds", examples=["2026-11-25T10:00:00.123Z"])]


class OrderView(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """An order and its current state (`GET /api/orders/{orderId}`, each entry of `GET /api/orders`)."""

    order_id: OrderId
    status: Status
    type: Kind
    side: Side
    base_asset: Annotated[str, Meta(description="the base token's symbol (its mint when it has none)")]
    quote_asset: Annotated[str, Meta(description="the quote token's symbol (its mint when it has none)")]
    input_mint: Annotated[str, Meta(description="the mint of the token sold (base for a sell, quote for a buy)")]
    output_mint: Annotated[str, Meta(description="the mint of the token bought")]
    amount_in: Annotated[int, Meta(ge=0, description="what the order sells, in base units of the input token")]
    slippage_bps: Annotated[int, Meta(ge=0, le=10_000, description="the slippage allowed, in basis points")]
    limit_price: Annotated[str | None, Meta(description="a limit order's limit, quote per base (decimal)")]
    expires_at: Annotated[str | None, Meta(description="when a limit or sniper order expires (ISO 8601, UTC)")]
    conditions: Annotated[dict[str, Any] | None, Meta(
        description="a sniper order's launch checks: `minLiquidity`, `maxPrice` (decimals or null), "
                    "`maxPriceImpactBps` (integer or null)")]
    min_amount_out: Annotated[NonNegative | None, Meta(
        description="the least the fill may give, in base units of the output token (once known)")]
    venue: Annotated[str | None, Meta(description="`raydium`, `meteora` or `split`, once routed")]
    plan: Annotated[dict[str, Any] | None, Meta(
        description="the routing decision, once routed: `inputMint`, `outputMint`, `amountIn`, `expectedAmountOut`,"
                    " `minAmountOut`, `reason`, `bestSingleAmountOut` and `legs` (one per venue: `venue`, `pool`,"
                    " `amountIn`, `expectedAmountOut`, `minAmountOut`)")]
    tx_signature: Annotated[str | None, Meta(description="the transaction's signature (base58), once submitted")]
    amount_out: Annotated[NonNegative | None, Meta(description="what the fill gave, in base units of the output token")]
    filled_amount_in: Annotated[NonNegative | None, Meta(
        description="what the fill sold: `amountIn`, or less when only some legs of a split landed")]
    execution_price: Annotated[str | None, Meta(description="the fill's price, quote per base (decimal)")]
    failure_reason: Annotated[str | None, Meta(
        description="why the order failed or did not fill completely (`slippage`, `no_route`, ...)")]
    attempts: Annotated[int, Meta(ge=0, description="submissions of its transaction so far")]
    last_seq: Annotated[int, Meta(ge=0, description="the seq of its latest event")]
    client_order_id: Annotated[str | None, Meta(description="the client's own id for it, if one was given")]
    created_at: Timestamp
    updated_at: Timestamp


class OrderPage(msgspec.Struct, rename="camel", frozen=True):
    """A page of the client's orders, newest first."""

    orders: list[OrderView]
    next: Annotated[str | None, Meta(
        description="the cursor of the next page (pass it as `before`); null when this page is the last")]


class OrderAccepted(msgspec.Struct, rename="camel", frozen=True):
    """A new order, stored: its events follow (`GET /api/orders/{orderId}/events`, or the stream)."""

    order_id: OrderId
    status: Literal["pending"]


class OrderRepeated(msgspec.Struct, rename="camel", frozen=True):
    """A repeated submission (same `Idempotency-Key` or `clientOrderId`, same order): the order it
    placed first, nothing new made."""

    order_id: OrderId
    status: Status
    repeat: Annotated[bool, Meta(description="always true: nothing new was made")]
    events: Annotated[list[Event], Meta(description="its events so far, oldest first")]


class OrderCancelled(msgspec.Struct, rename="camel", frozen=True):
    """The order is cancelled (terminal); its `cancelled` event follows."""

    order_id: OrderId
    status: Literal["cancelled"]


def order_view(order: OrderRecord, tokens: TokenRegistry) -> OrderView:
    base, quote = tokens.find(order.base_mint), tokens.find(order.quote_mint)
    key = order.idempotency_key
    return OrderView(
        order_id=order.id,
        status=order.status,
        type=order.kind,
        side=order.side,
        base_asset=base.symbol if base else order.base_mint,
        quote_asset=quote.symbol if quote else order.quote_mint,
        input_mint=order.input_mint,
        output_mint=order.output_mint,
        amount_in=order.amount_in,
        slippage_bps=order.slippage_bps,
        limit_price=None if order.limit_price is None else format_decimal(order.limit_price),
        expires_at=None if order.expires_at is None else format_ts(order.expires_at),
        conditions=order.conditions,
        min_amount_out=order.min_amount_out,
        venue=order.venue,
        plan=order.plan,
        tx_signature=order.tx_signature,
        amount_out=order.amount_out,
        filled_amount_in=order.filled_amount_in,
        execution_price=None if order.executed_price is None else format_decimal(order.executed_price),
        failure_reason=order.failure_reason,
        attempts=order.attempts,
        last_seq=order.last_seq,
        client_order_id=None if key is None or key.startswith(AUTO_KEY_PREFIX) else key,
        created_at=format_ts(order.created_at),
        updated_at=format_ts(order.updated_at),
    )
