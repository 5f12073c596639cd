"""quote: ask every venue at once for this order's size; store all answers in a `routing` event.

When the order is big enough to move prices, or a venue cannot take all of it, it also takes
the venues' split curves (outputs at sizes that pair up into splits of the order) so `route`
can find a split.
"""

from __future__ import annotations

import msgspec

from shared.context import Context
from shared.domain.orders import FailureReason
from shared.domain.messages import QuoteCurve, QuoteRequest, RouteRequest, VenueFailure, VenueQuote
from shared.domain.states import Status

SPLIT_STEPS = 100
SPLIT_MIN_SHARE_BPS = 5
"""An order under 5 bps of the shallower pool's depth (when both pools can fill it alone) stays
on one venue: it barely moves either price, so a split cannot pay."""


async def price_order(
    ctx: Context, input_mint: str, output_mint: str, amount_in: int, venues: list[str] | None = None,
) -> tuple[list[VenueQuote], list[VenueFailure], list[QuoteCurve]]:
    """Every venue's quote for the whole size and, when a split may pay, the venues' split curves
    (a venue short of depth for the whole order still offers the part it can take). The quote
    step and the quote API price an order with this, so both see the same plans."""
    quotes, failures, curves = await ctx.venues.price(input_mint, output_mint, amount_in, venues, SPLIT_STEPS,
                                                      SPLIT_MIN_SHARE_BPS)
    return quotes, failures, curves


class NoQuotes(Exception):
    """No venue answered; the step is retried, then the order fails with this reason."""


async def handle(message: QuoteRequest, ctx: Context) -> RouteRequest | None:
    quotes, failures, curves = await price_order(
        ctx, message.input_mint, message.output_mint, message.amount_in, message.venues or None
    )
    if not quotes and not curves:
        reason = "no venue returned a quote: " + "; ".join(f"{f.venue}: {f.error}" for f in failures)
        if any(f.retryable for f in failures):
            raise NoQuotes(reason)
        # Asking again cannot help: no pool can fill this size.
        await ctx.record(
            message.order_id,
            Status.FAILED,
            {"error": FailureReason.NO_ROUTE, "reason": reason, "failures": msgspec.to_builtins(failures), "attempts": ctx.attempt()},
            failure_reason=f"{FailureReason.NO_ROUTE}: {reason}",
            attempts=ctx.attempt(),
        )
        return None
    data = {
        "quotes": msgspec.to_builtins(quotes),
        "failures": msgspec.to_builtins(failures),
        "curves": msgspec.to_builtins(curves),
    }
    if await ctx.record(message.order_id, Status.ROUTING, data) is None:
        # Already past this step (a redelivery): carry on from what was stored, if routing is still next.
        order = await ctx.orders.get(message.order_id)
        if order is None or order.status != Status.ROUTING:
            return None
        stored = (await ctx.orders.event(message.order_id, Status.ROUTING)).data
        quotes = msgspec.convert(stored["quotes"], list[VenueQuote])
        failures = msgspec.convert(stored["failures"], list[VenueFailure])
        curves = msgspec.convert(stored.get("curves", []), list[QuoteCurve])
    return RouteRequest(
        message.order_id, message.input_mint, message.output_mint, message.slippage_bps, quotes, failures,
        floor_amount_out=message.floor_amount_out, curves=curves, floor_reason=message.floor_reason,
        side=message.side, amount_in=message.amount_in,
    )
