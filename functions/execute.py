"""execute: build, submit and confirm the plan's transactions (one per leg); the order ends
confirmed when every leg lands, or failed saying which leg did what.

Each transaction's signature comes from the order and leg, so a redelivered message (or
a crash between `submitted` and `confirmed`) resumes the same transactions and can never
fill twice.
"""

from __future__ import annotations

import asyncio

from shared.chain import Landing, Transaction, transaction_signature
from shared.context import Context
from shared.messages import ExecuteRequest, Plan
from shared.prices import price_of_base
from shared.states import Status
from shared.tokens import format_decimal

PARTIAL_FILL = "partial_fill"


def transactions(order_id: str, plan: Plan) -> list[Transaction]:
    return [
        Transaction(
            signature=transaction_signature(order_id, leg_no),
            order_id=order_id,
            leg=leg_no,
            venue=leg.venue,
            input_mint=plan.input_mint,
            output_mint=plan.output_mint,
            amount_in=leg.amount_in,
            min_amount_out=leg.min_amount_out,
        )
        for leg_no, leg in enumerate(plan.legs)
    ]


async def handle(message: ExecuteRequest, ctx: Context) -> None:
    plan, order_id = message.plan, message.order_id
    txs = transactions(order_id, plan)
    building = {"legs": [{"venue": tx.venue, "signature": tx.signature, "amountIn": tx.amount_in,
                          "minAmountOut": tx.min_amount_out} for tx in txs]}
    built_now = await ctx.record(order_id, Status.BUILDING, building) is not None
    if built_now:  # the one routed -> building change: no earlier delivery sent these transactions
        status = Status.BUILDING
    else:
        order = await ctx.orders.get(order_id)
        if order is None or order.status not in (Status.BUILDING, Status.SUBMITTED):
            return None  # not ours to execute (not routed yet, or already finished)
        status = order.status

    if status == Status.BUILDING:
        for tx in txs:
            await ctx.chain.build(tx)
        await asyncio.gather(*(ctx.chain.send(tx) for tx in txs))
        await ctx.record(order_id, Status.SUBMITTED, {"signatures": [tx.signature for tx in txs]},
                         tx_signature=txs[0].signature)

    landings: list[Landing] = await asyncio.gather(*(ctx.chain.confirm(tx, built_now) for tx in txs))
    legs = [
        {"venue": tx.venue, "txHash": landing.signature, "slot": landing.slot, "amountIn": tx.amount_in,
         "amountOut": landing.amount_out, "succeeded": landing.succeeded, "error": landing.error}
        for tx, landing in zip(txs, landings, strict=True)
    ]
    amount_out = sum(landing.amount_out for landing in landings)
    if not all(landing.succeeded for landing in landings):
        landed_any = any(landing.succeeded for landing in landings)
        error = PARTIAL_FILL if landed_any else next(landing.error for landing in landings if not landing.succeeded)
        await ctx.record(
            order_id, Status.FAILED,
            {"error": error, "legs": legs, "amountOut": amount_out, "attempts": ctx.attempt()},
            failure_reason=error, amount_out=amount_out if landed_any else None, attempts=ctx.attempt(),
        )
        return None
    side = message.side or (await ctx.orders.get(order_id)).side
    sold, bought = ctx.tokens.by_mint(plan.input_mint), ctx.tokens.by_mint(plan.output_mint)
    base, quote = (sold, bought) if side == "sell" else (bought, sold)
    price = price_of_base(side, base, quote, plan.amount_in, amount_out)
    data = {
        "txHash": landings[0].signature,
        "slot": max(landing.slot for landing in landings),
        "venue": plan.venue,
        "amountIn": plan.amount_in,
        "amountOut": amount_out,
        "executionPrice": format_decimal(price),
        "attempts": ctx.attempt(),
    }
    if len(legs) > 1:
        data["legs"] = legs
    await ctx.record(order_id, Status.CONFIRMED, data, amount_out=amount_out, executed_price=price,
                     attempts=ctx.attempt())
    return None
