"""trigger: limit and sniper orders rest here (`waiting`) until their condition fires
(`triggered`, then on to `quote`), they expire, or a launch is refused (a note, still waiting).

What fires an order (a price change, a pool launch, the clock) is decided outside, by
the price watcher; this step only moves the order conditionally, so a second delivery,
or a cancel racing a trigger, can never move it twice.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from functions.intake import quote_request
from shared.context import Context
from shared.domain.events import format_ts
from shared.domain.orders import Kind, OrderRecord, Side
from shared.domain.messages import ArmRequest, ExpireRequest, LaunchRefused, QuoteRequest, TriggerFired, TriggerMessage
from shared.domain.states import Status
from shared.domain.resting import expired, floor_amount_out


async def handle(message: TriggerMessage, ctx: Context) -> QuoteRequest | None:
    order = await ctx.orders.get(message.order_id)
    if order is None:
        return None
    if isinstance(message, ArmRequest):
        # Only from pending: a redelivered ArmRequest must not add a second "waiting" event.
        resting = await ctx.record(order.id, Status.WAITING, {"expiresAt": format_ts(order.expires_at)},
                                   only_from=frozenset({Status.PENDING}))
        if resting is not None or order.status == Status.WAITING:
            await ctx.resting.arm(order)
        return None
    if isinstance(message, TriggerFired):
        if order.status == Status.WAITING and order.expires_at is not None and expired(order.expires_at, ctx.clock.now()):
            # The price came too late: the order's time ran out first.
            if await ctx.record(order.id, Status.EXPIRED, {"expiresAt": format_ts(order.expires_at)}) is not None:
                await ctx.resting.disarm(order)
            return None
        if await ctx.record(order.id, Status.TRIGGERED, message.reason) is None and order.status != Status.TRIGGERED:
            return None  # cancelled, expired or already on its way
        await ctx.resting.disarm(order)
        return _quote_after_trigger(order, message, ctx)
    if isinstance(message, ExpireRequest):
        if order.expires_at is None or not expired(order.expires_at, ctx.clock.now()):
            return None
        if await ctx.record(order.id, Status.EXPIRED, {"expiresAt": format_ts(order.expires_at)}) is not None:
            await ctx.resting.disarm(order)
        return None
    if isinstance(message, LaunchRefused):
        await ctx.record(order.id, Status.WAITING, {"refused": message.reason, "launch": message.launch})
        return None
    raise TypeError(f"trigger cannot handle {type(message).__name__}")


def _quote_after_trigger(order: OrderRecord, fired: TriggerFired, ctx: Context) -> QuoteRequest:
    """A limit order keeps its limit as floor; a sniper buys only on the launched pool that
    passed its checks, never above its maxPrice."""
    request = quote_request(order)
    if order.kind != Kind.SNIPER:
        return request
    launch = fired.reason.get("launch", {})
    floor = request.floor_amount_out
    max_price = (order.conditions or {}).get("maxPrice")
    if max_price is not None:
        base, quote = ctx.tokens.by_mint(order.base_mint), ctx.tokens.by_mint(order.quote_mint)
        floor = max(floor, floor_amount_out(Side.BUY, order.amount_in, Decimal(max_price), base, quote))
    venues = [launch["venue"]] if "venue" in launch else []
    return msgspec.structs.replace(request, floor_amount_out=floor, venues=venues)


async def cancel(order_id: str, ctx: Context):
    """Cancel a resting (or not yet picked up) order. Returns the event, or None if the
    order was already past the point of cancelling (the state table decides)."""
    event = await ctx.record(order_id, Status.CANCELLED, {"reason": "cancelled by client"})
    if event is not None:
        order = await ctx.orders.get(order_id)
        await ctx.resting.disarm(order)
    return event
