"""quote: ask every venue at once for this order's size; store all answers in a `routing` event.

When the order is big enough to move prices, or a venue cannot take all of it, it also takes
the venues' split curves (outputs at sizes that pair up into splits of the order) so `route`
can find a split. An executed quote's plan is not priced as a whole: each of its legs is asked
of its own venue, for its own size, so `route` can tell whether the market moved past the quote.

The quote APIs (GET /api/quote, GET /swap/v1/quote) price an order with the same code:
`quote_pair` and `plan_quote`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgspec

from shared.context import Context
from shared.domain.errors import FieldError
from shared.domain.messages import Plan, QuoteCurve, QuoteRequest, RouteRequest, VenueFailure, VenueQuote
from shared.domain.orders import FailureReason
from shared.domain.routing import NoRoute, plan_route
from shared.domain.states import Status
from shared.domain.swap import InsufficientLiquidity, SwapOutcome
from shared.domain.tokens import Token

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


async def price_legs(ctx: Context, plan: Plan) -> tuple[list[VenueQuote], list[VenueFailure], list[QuoteCurve]]:
    """Each leg of a fixed plan (an executed quote's) priced now on its own venue, for its own size."""
    answers = await asyncio.gather(*(price_order(ctx, plan.input_mint, plan.output_mint, leg.amount_in, [leg.venue])
                                     for leg in plan.legs))
    return [q for quotes, _, _ in answers for q in quotes], [f for _, failures, _ in answers for f in failures], []


async def quote_pair(ctx: Context, input_mint: str | None, output_mint: str | None) -> tuple[Token, Token]:
    """The tokens a quote is asked for (mints or symbols), checked as a market order's pair would
    be; FieldError names the parameter."""
    if input_mint is None or output_mint is None:
        missing = "inputMint" if input_mint is None else "outputMint"
        raise FieldError(missing, f"{missing} is required")
    await ctx.tokens.ensure(input_mint, output_mint)
    token_in = ctx.tokens.resolve("inputMint", input_mint)
    token_out = ctx.tokens.resolve("outputMint", output_mint)
    if token_in == token_out:
        raise FieldError("outputMint", "outputMint must differ from inputMint")
    if not await ctx.venues.supports(token_in.mint, token_out.mint):
        raise FieldError("outputMint", f"NO_ROUTES_FOUND: no venue trades {token_in.symbol}/{token_out.symbol}")
    return token_in, token_out


@dataclass(frozen=True, slots=True)
class PricedPlan:
    """What a market order of some size would be routed to now: the plan, every venue's quote and
    failure, and each leg's pool math (fee, price impact) at its size."""

    plan: Plan
    quotes: list[VenueQuote]
    failures: list[VenueFailure]
    outcomes: list[SwapOutcome]


async def plan_quote(ctx: Context, token_in: Token, token_out: Token, amount_in: int, slippage_bps: int,
                     venues: list[str] | None = None) -> PricedPlan:
    """The plan a market order of `amount_in` would get now (on `venues` only, if named), by the
    quote and route steps' own code; FieldError naming `amount` when no venue can fill it."""
    quotes, failures, curves = await price_order(ctx, token_in.mint, token_out.mint, amount_in, venues)
    try:
        plan = plan_route(amount_in, quotes, curves, token_in.mint, token_out.mint, slippage_bps)
        outcomes = await ctx.venues.outcomes(plan.input_mint, plan.output_mint,
                                             [(leg.venue, leg.amount_in) for leg in plan.legs])
    except NoRoute:
        raise FieldError("amount", "NO_ROUTES_FOUND: " + "; ".join(f"{f.venue}: {f.error}" for f in failures)) from None
    except InsufficientLiquidity:
        raise FieldError("amount", "NO_ROUTES_FOUND: liquidity moved") from None
    return PricedPlan(plan, quotes, failures, outcomes)


class NoQuotes(Exception):
    """No venue answered; the step is retried, then the order fails with this reason."""


async def handle(message: QuoteRequest, ctx: Context) -> RouteRequest | None:
    if message.plan is not None:
        quotes, failures, curves = await price_legs(ctx, message.plan)
    else:
        quotes, failures, curves = await price_order(
            ctx, message.input_mint, message.output_mint, message.amount_in, message.venues or None
        )
    if (not quotes and not curves) or (message.plan is not None and failures):  # a fixed plan needs every leg
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
        side=message.side, amount_in=message.amount_in, plan=message.plan,
    )
