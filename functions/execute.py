"""execute: build, submit and confirm the swap on the chain; the order ends confirmed or failed.

The transaction's signature comes from the order and leg, so a redelivered message
(or a crash between `submitted` and `confirmed`) resumes the same transaction and
can never fill twice.
"""

from __future__ import annotations

from shared.chain import Transaction, transaction_signature
from shared.context import Context
from shared.messages import ExecuteRequest
from shared.prices import price_of_base
from shared.states import Status
from shared.tokens import format_decimal


async def handle(message: ExecuteRequest, ctx: Context) -> None:
    plan = message.plan
    tx = Transaction(
        signature=transaction_signature(message.order_id, 0),
        order_id=message.order_id,
        leg=0,
        venue=plan.venue,
        input_mint=plan.input_mint,
        output_mint=plan.output_mint,
        amount_in=plan.amount_in,
        min_amount_out=plan.min_amount_out,
    )
    building = {"venue": plan.venue, "pool": plan.pool, "signature": tx.signature, "minAmountOut": tx.min_amount_out}
    if await ctx.record(message.order_id, Status.BUILDING, building) is not None:
        status = Status.BUILDING
    else:
        order = await ctx.orders.get(message.order_id)
        if order is None or order.status not in (Status.BUILDING, Status.SUBMITTED):
            return None  # not ours to execute (not routed yet, or already finished)
        status = order.status

    if status == Status.BUILDING:
        await ctx.chain.build(tx)
        await ctx.chain.send(tx)
        await ctx.record(message.order_id, Status.SUBMITTED, {"signature": tx.signature}, tx_signature=tx.signature)

    landing = await ctx.chain.confirm(tx)
    if not landing.succeeded:
        await ctx.record(
            message.order_id,
            Status.FAILED,
            {"error": landing.error, "signature": tx.signature, "slot": landing.slot, "attempts": ctx.attempt()},
            failure_reason=landing.error,
            attempts=ctx.attempt(),
        )
        return None
    order = await ctx.orders.get(message.order_id)
    base, quote = ctx.tokens.by_mint(order.base_mint), ctx.tokens.by_mint(order.quote_mint)
    price = price_of_base(order.side, base, quote, plan.amount_in, landing.amount_out)
    await ctx.record(
        message.order_id,
        Status.CONFIRMED,
        {
            "txHash": landing.signature,
            "slot": landing.slot,
            "venue": plan.venue,
            "amountIn": plan.amount_in,
            "amountOut": landing.amount_out,
            "executionPrice": format_decimal(price),
            "attempts": ctx.attempt(),
        },
        amount_out=landing.amount_out,
        executed_price=price,
        attempts=ctx.attempt(),
    )
    return None
