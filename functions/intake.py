"""intake: validate a new order, give it an id, store it with its `pending` event."""

from __future__ import annotations

from shared.context import Context
from shared.messages import NewOrder, QuoteRequest
from shared.orders import OrderRecord
from shared.states import Status
from shared.tokens import TokenError, parse_amount


class OrderRejected(TokenError):
    """The order cannot be accepted as sent; `field` names the culprit."""


async def handle(message: NewOrder, ctx: Context) -> QuoteRequest | None:
    request = message.request
    base = ctx.tokens.resolve("baseAsset", request.base_asset)
    quote = ctx.tokens.resolve("quoteAsset", request.quote_asset)
    if base == quote:
        raise OrderRejected("quoteAsset", "quoteAsset must differ from baseAsset")
    sold, bought = (base, quote) if request.side == "sell" else (quote, base)
    amount_in = parse_amount("amount", request.amount, sold)
    if not ctx.venues.supports(sold.mint, bought.mint):
        raise OrderRejected("quoteAsset", f"no venue trades {base.symbol}/{quote.symbol}")
    slippage_bps = ctx.settings.default_slippage_bps if request.slippage_bps is None else request.slippage_bps

    existing = await ctx.orders.find_by_key(message.client_id, message.submission_key)
    if existing is not None:
        return _next(existing) if existing.status == Status.PENDING else None

    now = ctx.clock.now()
    order = OrderRecord(
        id=ctx.ids.order_id(),
        client_id=message.client_id,
        idempotency_key=message.submission_key,
        kind=type(request).__struct_config__.tag,
        side=request.side,
        status=Status.PENDING,
        base_mint=base.mint,
        quote_mint=quote.mint,
        input_mint=sold.mint,
        output_mint=bought.mint,
        amount_in=amount_in,
        slippage_bps=slippage_bps,
        created_at=now,
        updated_at=now,
    )
    event = await ctx.orders.create(
        order,
        {
            "type": order.kind,
            "side": order.side,
            "baseAsset": base.symbol,
            "quoteAsset": quote.symbol,
            "inputMint": sold.mint,
            "outputMint": bought.mint,
            "amount": sold.format(amount_in),
            "amountIn": amount_in,
            "slippageBps": slippage_bps,
            "clientOrderId": request.client_order_id,
        },
    )
    if event is None:  # the same submission raced us in: it owns the order
        raced = await ctx.orders.find_by_key(message.client_id, message.submission_key)
        return _next(raced) if raced is not None and raced.status == Status.PENDING else None
    await ctx.publisher.publish(event)
    return _next(order)


def _next(order: OrderRecord) -> QuoteRequest:
    return QuoteRequest(order.id, order.input_mint, order.output_mint, order.amount_in, order.slippage_bps)
