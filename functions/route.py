"""route: pick the venue that gives this order the most, store and log the decision."""

from __future__ import annotations

import msgspec

from shared.context import Context
from shared.messages import ExecuteRequest, Plan, RouteRequest
from shared.prices import output_per_input
from shared.routing import advantage_bps, choose_venue, min_amount_out
from shared.states import Status
from shared.tokens import format_decimal


async def handle(message: RouteRequest, ctx: Context) -> ExecuteRequest | None:
    decision = choose_venue(message.quotes)
    best = decision.best
    plan = Plan(
        venue=best.venue,
        pool=best.pool,
        input_mint=message.input_mint,
        output_mint=message.output_mint,
        amount_in=best.amount_in,
        expected_amount_out=best.amount_out,
        min_amount_out=min_amount_out(best.amount_out, message.slippage_bps),
        reason=decision.reason,
    )
    runner_up = decision.runner_up
    token_in, token_out = ctx.tokens.by_mint(message.input_mint), ctx.tokens.by_mint(message.output_mint)
    effective = {
        q.venue: format_decimal(output_per_input(token_in, token_out, q.amount_in, q.amount_out)) for q in message.quotes
    }
    data = {
        **msgspec.to_builtins(plan),
        "slippageBps": message.slippage_bps,
        "priceImpact": best.price_impact,
        "effectivePrices": effective,
        "alternatives": [{"venue": q.venue, "amountOut": q.amount_out} for q in message.quotes if q is not best],
        "advantageBps": advantage_bps(best.amount_out, runner_up.amount_out) if runner_up else None,
    }
    event = await ctx.record(
        message.order_id,
        Status.ROUTED,
        data,
        venue=plan.venue,
        plan=msgspec.to_builtins(plan),
        min_amount_out=plan.min_amount_out,
    )
    if event is None:
        order = await ctx.orders.get(message.order_id)
        if order is None or order.status != Status.ROUTED or order.plan is None:
            return None
        plan = msgspec.convert(order.plan, Plan)
    else:
        ctx.log.info("routed %s", msgspec.json.encode({"orderId": message.order_id, **data}).decode())
    return ExecuteRequest(message.order_id, plan)
