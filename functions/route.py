"""route: pick the plan that gives this order the most — one venue, or a split across both —
store it, and log the decision as one record (one line of text, or its fields as keys of a JSON line).
An executed quote's plan is not picked again: it is carried out as quoted, unless the market moved
past its minimums (then the order fails with `slippage` before anything is sent)."""

from __future__ import annotations

import msgspec

from shared.context import Context
from shared.domain.messages import ExecuteRequest, Plan, RouteRequest
from shared.domain.prices import output_per_input
from shared.domain.routing import advantage_bps, as_priced_now, plan_route, share_percent
from shared.domain.states import Status
from shared.domain.tokens import format_decimal


class RoutingDecision(dict):
    """The routing decision as one log record. Where logs are text it is one readable line,
    `routed {"orderId":…,"venue":…,…}`; a JSON formatter puts its items in the line itself as keys
    (venue, amounts, effective prices, reason, legs…), with `message` as the line's message
    (local_runtime/logs.py)."""

    message = "routed"

    def __str__(self) -> str:
        return f"{self.message} {msgspec.json.encode(self).decode()}"


async def handle(message: RouteRequest, ctx: Context) -> ExecuteRequest | None:
    if message.plan is not None:
        plan = as_priced_now(message.plan, message.quotes)
    else:
        plan = plan_route(
            message.size, message.quotes, message.curves, message.input_mint, message.output_mint,
            message.slippage_bps, message.floor_amount_out,
        )
    short = plan.short_leg()
    if short is not None:
        # No plan gives every leg its share of the floor (the price moved back after a limit
        # fired, minAmountOut asks for more than the market pays, or the market moved past an
        # executed quote's threshold): filling now would break the client's bound.
        await ctx.record(
            message.order_id, Status.FAILED,
            {"error": message.floor_reason, "expectedAmountOut": plan.expected_amount_out,
             "floorAmountOut": message.floor_amount_out, "venue": short.venue,
             "legExpectedAmountOut": short.expected_amount_out, "legMinAmountOut": short.min_amount_out},
            failure_reason=message.floor_reason,
        )
        return None
    await ctx.tokens.ensure(message.input_mint, message.output_mint)
    token_in, token_out = ctx.tokens.by_mint(message.input_mint), ctx.tokens.by_mint(message.output_mint)
    if len(plan.legs) > 1:
        runner_up = plan.best_single_amount_out or None
    else:
        runner_up = max((q.amount_out for q in message.quotes if q.venue != plan.venue), default=None)
    data = {
        **msgspec.to_builtins(plan),
        "venue": plan.venue,
        "slippageBps": message.slippage_bps,
        "effectivePrices": {
            q.venue: format_decimal(output_per_input(token_in, token_out, q.amount_in, q.amount_out))
            for q in message.quotes
        },
        "priceImpact": {q.venue: q.price_impact for q in message.quotes},
        "advantageBps": advantage_bps(plan.expected_amount_out, runner_up) if runner_up else None,
    }
    if len(plan.legs) > 1:
        data["splitGainBps"] = (advantage_bps(plan.expected_amount_out, plan.best_single_amount_out)
                                if plan.best_single_amount_out else None)
        data["legs"] = [{**msgspec.to_builtins(leg), "sharePct": share_percent(leg.amount_in, plan.amount_in)}
                        for leg in plan.legs]
    event = await ctx.record(
        message.order_id, Status.ROUTED, data,
        venue=plan.venue, plan=msgspec.to_builtins(plan), min_amount_out=plan.min_amount_out,
    )
    if event is None:
        order = await ctx.orders.get(message.order_id)
        if order is None or order.status != Status.ROUTED or order.plan is None:
            return None
        plan = msgspec.convert(order.plan, Plan)
    else:
        ctx.log.info(RoutingDecision(orderId=message.order_id, **data), extra={"order_id": message.order_id})
    return ExecuteRequest(message.order_id, plan, message.side)
