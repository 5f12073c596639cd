"""quote: ask every venue at once for this order's size; store all answers in a `routing` event."""

from __future__ import annotations

import msgspec

from shared.context import Context
from shared.messages import QuoteRequest, RouteRequest, VenueFailure, VenueQuote
from shared.states import Status


NO_ROUTE = "no_route"


class NoQuotes(Exception):
    """No venue answered; the step is retried, then the order fails with this reason."""


async def handle(message: QuoteRequest, ctx: Context) -> RouteRequest | None:
    quotes, failures = await ctx.venues.quote_all(message.input_mint, message.output_mint, message.amount_in)
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
    data = {"quotes": msgspec.to_builtins(quotes), "failures": msgspec.to_builtins(failures)}
    if await ctx.record(message.order_id, Status.ROUTING, data) is None:
        # Already past this step (a redelivery): carry on from what was stored, if routing is still next.
        order = await ctx.orders.get(message.order_id)
        if order is None or order.status != Status.ROUTING:
            return None
        stored = await ctx.orders.event(message.order_id, Status.ROUTING)
        quotes = msgspec.convert(stored.data["quotes"], list[VenueQuote])
        failures = msgspec.convert(stored.data["failures"], list[VenueFailure])
    return RouteRequest(
        message.order_id, message.input_mint, message.output_mint, message.slippage_bps, quotes, failures
    )
