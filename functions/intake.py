"""intake: validate a new order, give it an id, store it with its `pending` event.

Market orders go on to `quote`; limit and sniper orders go to `trigger` to rest.
"""

from __future__ import annotations

from typing import Any

from shared.chain import SLIPPAGE
from shared.context import Context
from shared.errors import FieldError
from shared.messages import ArmRequest, LimitOrderRequest, MarketOrderRequest, NewOrder, QuoteRequest
from shared.orders import OrderRecord
from shared.states import Status
from shared.tokens import Token, check_mint, parse_amount
from shared.triggers import floor_amount_out, parse_expiry, parse_price


LIMIT_NOT_MET = "limit_price_not_met"


class OrderRejected(FieldError):
    """The order cannot be accepted as sent; `field` names the culprit."""


def _sniper_target(ctx: Context, asset: str) -> tuple[str, Token | None]:
    """A sniper's base: a mint with no pool yet (it may not be a known token at all)."""
    listed = ctx.tokens.find(asset)
    mint = listed.mint if listed else check_mint("baseAsset", asset)
    return mint, listed


def _check_size(ctx: Context, sold: Token, amount_in: int) -> None:
    largest = ctx.settings.max_order(sold.symbol)
    if largest is not None and sold.to_ui(amount_in) > largest:
        raise OrderRejected("amount", f"amount exceeds the largest order this engine takes: {largest} {sold.symbol}")


async def handle(message: NewOrder, ctx: Context) -> QuoteRequest | ArmRequest | None:
    request = message.request
    kind = type(request).__struct_config__.tag
    now = ctx.clock.now()
    quote = ctx.tokens.resolve("quoteAsset", request.quote_asset)
    extra: dict[str, Any] = {}
    if kind == "sniper":
        if request.side != "buy":
            raise OrderRejected("side", "sniper orders buy a newly launched token: side must be \"buy\"")
        base_mint, base = _sniper_target(ctx, request.base_asset)
        if base_mint == quote.mint:
            raise OrderRejected("quoteAsset", "quoteAsset must differ from baseAsset")
        if base is not None and ctx.venues.supports(base_mint, quote.mint):
            raise OrderRejected("baseAsset", "this token already trades; use a market or limit order")
        amount_in = parse_amount("amount", request.amount, quote)
        _check_size(ctx, quote, amount_in)
        conditions = {"minLiquidity": request.min_liquidity, "maxPrice": request.max_price,
                      "maxPriceImpactBps": request.max_price_impact_bps}
        if request.min_liquidity is not None:
            parse_amount("minLiquidity", request.min_liquidity, quote)
        if request.max_price is not None:
            parse_price("maxPrice", request.max_price)
        extra = {"expires_at": parse_expiry("expiresAt", request.expires_at, now), "conditions": conditions}
        sold_mint, bought_mint, base_symbol = quote.mint, base_mint, base.symbol if base else base_mint
    else:
        base = ctx.tokens.resolve("baseAsset", request.base_asset)
        if base == quote:
            raise OrderRejected("quoteAsset", "quoteAsset must differ from baseAsset")
        sold, bought = (base, quote) if request.side == "sell" else (quote, base)
        amount_in = parse_amount("amount", request.amount, sold)
        _check_size(ctx, sold, amount_in)
        if not ctx.venues.supports(sold.mint, bought.mint):
            raise OrderRejected("quoteAsset", f"no venue trades {base.symbol}/{quote.symbol}")
        floor = 0 if request.min_amount_out is None else parse_amount("minAmountOut", request.min_amount_out, bought)
        if isinstance(request, LimitOrderRequest):
            limit = parse_price("limitPrice", request.limit_price)
            floor = max(floor, floor_amount_out(request.side, amount_in, limit, base, quote))
            extra = {"limit_price": limit, "expires_at": parse_expiry("expiresAt", request.expires_at, now)}
        if floor:
            extra["min_amount_out"] = floor
        sold_mint, bought_mint, base_symbol = sold.mint, bought.mint, base.symbol
    slippage_bps = ctx.settings.default_slippage_bps if request.slippage_bps is None else request.slippage_bps

    order = OrderRecord(
        id=ctx.ids.order_id(),
        client_id=message.client_id,
        idempotency_key=message.submission_key,
        request_hash=message.request_hash,
        kind=kind,
        side=request.side,
        status=Status.PENDING,
        base_mint=bought_mint if request.side == "buy" else sold_mint,
        quote_mint=quote.mint,
        input_mint=sold_mint,
        output_mint=bought_mint,
        amount_in=amount_in,
        slippage_bps=slippage_bps,
        created_at=now,
        updated_at=now,
        **extra,
    )
    data = {
        "type": kind,
        "side": order.side,
        "baseAsset": base_symbol,
        "quoteAsset": quote.symbol,
        "inputMint": order.input_mint,
        "outputMint": order.output_mint,
        "amountIn": amount_in,
        "slippageBps": slippage_bps,
        "clientOrderId": request.client_order_id,
    }
    if not isinstance(request, MarketOrderRequest):
        data["expiresAt"] = order.expires_at.isoformat().replace("+00:00", "Z")
    if order.limit_price is not None:
        data["limitPrice"] = request.limit_price
    if order.min_amount_out is not None:
        data["minAmountOut"] = order.min_amount_out
    if order.conditions is not None:
        data["conditions"] = order.conditions
    event = await ctx.orders.create(order, data)
    if event is None:  # a delivery of this submission (or a racing one) stored the order first: it owns it
        raced = await ctx.orders.find_by_key(message.client_id, message.submission_key)
        return _next(raced) if raced is not None and raced.status == Status.PENDING else None
    await ctx.publisher.publish(event)
    return _next(order)


def _next(order: OrderRecord) -> QuoteRequest | ArmRequest:
    if order.kind != "market":
        return ArmRequest(order.id)
    return quote_request(order)


def quote_request(order: OrderRecord) -> QuoteRequest:
    """What `quote` needs to price this order now (also used when a resting order fires)."""
    return QuoteRequest(
        order.id, order.input_mint, order.output_mint, order.amount_in, order.slippage_bps,
        floor_amount_out=order.min_amount_out or 0,
        floor_reason=LIMIT_NOT_MET if order.limit_price is not None else SLIPPAGE, side=order.side,
    )
