"""quote: ask every venue at once for this order's size; store all answers in a `routing` event.

When the order is big enough to move prices, it also takes each venue's output curve
(outputs for every 1 % of the size) so `route` can find a split.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.context import Context
from shared.messages import QuoteCurve, QuoteRequest, RouteRequest, VenueFailure, VenueQuote
from shared.states import Status

NO_ROUTE = "no_route"
SPLIT_STEPS = 100
SPLIT_MIN_IMPACT = Decimal("0.0005")
"""Below 5 bps of price impact on every venue a split cannot beat the cheaper venue alone."""


class NoQuotes(Exception):
    """No venue answered; the step is retried, then the order fails with this reason."""


async def handle(message: QuoteRequest, ctx: Context) -> RouteRequest | None:
    quotes, failures = await ctx.venues.quote_all(
        message.input_mint, message.output_mint, message.amount_in, message.venues or None
    )
    if not quotes:
        reason = "no venue returned a quote: " + "; ".join(f"{f.venue}: {f.error}" for f in failures)
        if any(f.retryable for f in failures):
            raise NoQuotes(reason)
        # Asking again cannot help: no pool can fill this size.
        await ctx.record(
            message.order_id,
            Status.FAILED,
            {"error": NO_ROUTE, "reason": reason, "failures": msgspec.to_builtins(failures), "attempts": ctx.attempt()},
            failure_reason=f"{NO_ROUTE}: {reason}",
            attempts=ctx.attempt(),
        )
        return None
    curves = []
    if len(quotes) == 2 and max(Decimal(q.price_impact) for q in quotes) >= SPLIT_MIN_IMPACT:
        curves = [
            ctx.venues.curve(q.venue, message.input_mint, message.output_mint, message.amount_in, SPLIT_STEPS)
            for q in quotes
        ]
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
        side=message.side,
    )
