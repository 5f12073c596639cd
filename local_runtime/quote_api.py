"""GET /api/quote: what the engine would do for an order, without placing it (Jupiter's shape)."""

from __future__ import annotations

import time
from decimal import Decimal

from litestar import Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from functions.intake import check_size
from functions.quote import price_order
from local_runtime.http_api import error_response
from shared.domain.errors import FieldError
from shared.domain.messages import Plan
from shared.domain.routing import NoRoute, plan_route
from shared.domain.tokens import Token, parse_amount
from shared.domain.swap import InsufficientLiquidity


@get("/api/quote", summary="Quote an order without placing it")
async def get_quote(
    state: State,
    amount: str = Parameter(description="decimal amount of the input token, e.g. \"1.5\" (exact in)"),
    input_mint: str | None = Parameter(query="inputMint", default=None, description="mint or symbol sold"),
    output_mint: str | None = Parameter(query="outputMint", default=None, description="mint or symbol bought"),
    slippage_bps: int = Parameter(query="slippageBps", default=50, ge=0, le=10_000),
) -> Response:
    """Best plan (one venue or a split), every venue's quote, amount out, minimum amount out
    (`otherAmountThreshold`), price impact: what a market order of this size would be routed to
    now, by the same quote and route code. Nothing is stored."""
    ctx = state.services.ctx
    started = time.perf_counter()
    token_in, token_out, amount_in = await _pair_and_amount(ctx, input_mint, output_mint, amount)
    quotes, failures, curves = await price_order(ctx, token_in.mint, token_out.mint, amount_in)
    try:
        plan = plan_route(amount_in, quotes, curves, token_in.mint, token_out.mint, slippage_bps)
    except NoRoute:
        return error_response(422, "NO_ROUTES_FOUND: " + "; ".join(f"{f.venue}: {f.error}" for f in failures), "amount")
    try:
        route_plan, impact = await _route_plan(ctx, plan)
    except InsufficientLiquidity:
        return error_response(422, "NO_ROUTES_FOUND: liquidity moved", "amount")
    return Response({
        "inputMint": token_in.mint,
        "outputMint": token_out.mint,
        "inAmount": str(plan.amount_in),
        "outAmount": str(plan.expected_amount_out),
        "otherAmountThreshold": str(plan.min_amount_out),
        "swapMode": "ExactIn",
        "slippageBps": slippage_bps,
        "priceImpactPct": format(impact.quantize(Decimal("1e-12")), "f"),
        "routePlan": route_plan,
        "reason": plan.reason,
        "venues": [{"venue": q.venue, "outAmount": str(q.amount_out), "feeAmount": str(q.fee),
                    "priceImpactPct": q.price_impact} for q in quotes],
        "failures": [{"venue": f.venue, "error": f.error} for f in failures],
        "timeTaken": round(time.perf_counter() - started, 6),
    })


async def _pair_and_amount(ctx, input_mint: str | None, output_mint: str | None, amount: str
                           ) -> tuple[Token, Token, int]:
    """The tokens and the amount in base units, checked as a market order's would be (the same
    per-asset maximum); FieldError names what is wrong."""
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
    amount_in = parse_amount("amount", amount, token_in)
    check_size(ctx.settings, token_in, amount_in)
    return token_in, token_out, amount_in


async def _route_plan(ctx, plan: Plan) -> tuple[list[dict], Decimal]:
    """Jupiter's routePlan (one entry per leg, percents adding up to 100) and the plan's price
    impact (the legs' impacts weighted by input)."""
    route_plan, impact = [], Decimal(0)
    outcomes = await ctx.venues.outcomes(plan.input_mint, plan.output_mint,
                                         [(leg.venue, leg.amount_in) for leg in plan.legs])
    for leg, outcome in zip(plan.legs, outcomes, strict=True):
        impact += outcome.price_impact * leg.amount_in / plan.amount_in
        route_plan.append({
            "swapInfo": {
                "ammKey": leg.pool, "label": leg.venue, "inputMint": plan.input_mint, "outputMint": plan.output_mint,
                "inAmount": str(leg.amount_in), "outAmount": str(leg.expected_amount_out),
                "feeAmount": str(outcome.fee), "feeMint": plan.input_mint,
            },
            "percent": (leg.amount_in * 100 + plan.amount_in // 2) // plan.amount_in,
        })
    route_plan[-1]["percent"] = 100 - sum(step["percent"] for step in route_plan[:-1])  # shares add up to 100
    return route_plan, impact
