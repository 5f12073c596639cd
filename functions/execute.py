"""execute: build, submit and confirm the plan's transactions (one per leg); the order ends
confirmed when every leg lands, partially filled when only some do, or failed when none does,
its terminal event saying what was sold, bought, at what price, and what was left unfilled.

Each transaction's signature comes from the order and leg, so a redelivered message (or
a crash between `submitted` and `confirmed`) resumes the same transactions and can never
fill twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from shared.domain.chain import Landing, Transaction, transaction_signature
from shared.context import Context
from shared.domain.messages import ExecuteRequest, Plan
from shared.domain.prices import price_of_base
from shared.domain.states import Status
from shared.domain.tokens import format_decimal

T = TypeVar("T")


async def at_once(calls: list[Awaitable[T]]) -> list[T]:
    """The legs' calls concurrently; a one-leg plan's (the common case) is awaited here, with no task."""
    if len(calls) == 1:
        return [await calls[0]]
    return list(await asyncio.gather(*calls))


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
        await at_once([ctx.chain.send(tx) for tx in txs])
        await ctx.record(order_id, Status.SUBMITTED, {"signatures": [tx.signature for tx in txs]},
                         tx_signature=txs[0].signature)

    landings: list[Landing] = await at_once([ctx.chain.confirm(tx, built_now) for tx in txs])
    await _settle(order_id, message, txs, landings, ctx)
    return None


async def _settle(order_id: str, message: ExecuteRequest, txs: list[Transaction], landings: list[Landing],
                  ctx: Context) -> None:
    """The terminal event, saying on its own what was sold, what was bought, at what price and
    what was left unfilled: `confirmed` when every leg landed, `partially_filled` when some did,
    `failed` when none did (with the first failed leg's reason)."""
    plan = message.plan
    landed = [(tx, landing) for tx, landing in zip(txs, landings, strict=True) if landing.succeeded]
    sold = sum(tx.amount_in for tx, _ in landed)
    bought = sum(landing.amount_out for _, landing in landed)
    price = None
    if landed:
        side = message.side or (await ctx.orders.get(order_id)).side
        await ctx.tokens.ensure(plan.input_mint, plan.output_mint)
        token_in, token_out = ctx.tokens.by_mint(plan.input_mint), ctx.tokens.by_mint(plan.output_mint)
        base, quote = (token_in, token_out) if side == "sell" else (token_out, token_in)
        price = price_of_base(side, base, quote, sold, bought)
    data = {
        "venue": plan.venue,
        "amountIn": sold,
        "amountOut": bought,
        "executionPrice": None if price is None else format_decimal(price),
        "unfilledAmountIn": plan.amount_in - sold,
        "attempts": ctx.attempt(),
    }
    if landed:
        data["txHash"] = landed[0][1].signature
        data["slot"] = max(landing.slot for _, landing in landed)
    if len(txs) > 1:
        data["legs"] = [
            {"venue": tx.venue, "txHash": landing.signature, "slot": landing.slot, "amountIn": tx.amount_in,
             "amountOut": landing.amount_out, "succeeded": landing.succeeded, "error": landing.error}
            for tx, landing in zip(txs, landings, strict=True)
        ]
    error = next((landing.error for landing in landings if not landing.succeeded), None)
    if error is None:
        status = Status.CONFIRMED
    else:
        status = Status.PARTIALLY_FILLED if landed else Status.FAILED
        data = {"error": error, "requestedAmountIn": plan.amount_in, **data}
    await ctx.record(order_id, status, data, amount_out=bought if landed else None, filled_amount_in=sold,
                     executed_price=price, failure_reason=error, attempts=ctx.attempt())
