"""The `trigger` function on fakes: resting, firing once, expiring, cancelling, refusing a launch."""

from __future__ import annotations

from datetime import timedelta

from functions import intake, trigger
from shared.domain.messages import (
    ExpireRequest, LaunchRefused, LimitOrderRequest, NewOrder, QuoteRequest, SniperOrderRequest, TriggerFired,
)
from shared.domain.states import Status
from tests.fakes import fake_context

NEW_MINT = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


async def resting_limit(ctx, side: str = "sell", limit: str = "180.5", amount: str = "1.5"):
    request = LimitOrderRequest(side=side, base_asset="SOL", quote_asset="USDC", amount=amount, limit_price=limit,
                                expires_at=60)
    arm = await intake.handle(NewOrder(request, "c", f"{side}{limit}{amount}"), ctx)
    assert await trigger.handle(arm, ctx) is None
    return arm.order_id


async def statuses(ctx, order_id):
    return [e.status for e in await ctx.orders.events(order_id)]


async def test_arming_rests_the_order_and_indexes_it():
    ctx = fake_context()
    order_id = await resting_limit(ctx)
    assert await statuses(ctx, order_id) == ["pending", "waiting"]
    assert order_id in ctx.resting.armed


async def test_a_fired_limit_goes_to_quote_with_its_limit_as_floor():
    ctx = fake_context()
    order_id = await resting_limit(ctx)
    nxt = await trigger.handle(TriggerFired(order_id, {"price": "181"}), ctx)
    assert isinstance(nxt, QuoteRequest) and nxt.floor_amount_out == 270_750_000  # 1.5 × 180.5 USDC
    assert nxt.floor_reason == "limit_price_not_met"
    assert await statuses(ctx, order_id) == ["pending", "waiting", "triggered"]
    assert order_id not in ctx.resting.armed


async def test_a_second_delivery_of_the_same_firing_writes_nothing():
    ctx = fake_context()
    order_id = await resting_limit(ctx)
    first = await trigger.handle(TriggerFired(order_id, {}), ctx)
    again = await trigger.handle(TriggerFired(order_id, {}), ctx)
    assert again == first  # the pipeline carries on from where it is
    assert await statuses(ctx, order_id) == ["pending", "waiting", "triggered"]


async def test_a_cancelled_order_does_not_fire():
    ctx = fake_context()
    order_id = await resting_limit(ctx)
    assert await trigger.cancel(order_id, ctx) is not None
    assert await trigger.handle(TriggerFired(order_id, {}), ctx) is None
    assert await statuses(ctx, order_id) == ["pending", "waiting", "cancelled"]
    assert await trigger.cancel(order_id, ctx) is None  # a second cancel changes nothing


async def test_expiry_only_after_the_expiry_time():
    ctx = fake_context()
    order_id = await resting_limit(ctx)
    assert await trigger.handle(ExpireRequest(order_id), ctx) is None
    assert (await ctx.orders.get(order_id)).status == Status.WAITING  # too early: ignored
    ctx.clock._now += timedelta(seconds=61)
    await trigger.handle(ExpireRequest(order_id), ctx)
    assert (await ctx.orders.get(order_id)).status == Status.EXPIRED
    assert await trigger.handle(TriggerFired(order_id, {}), ctx) is None  # expired orders never fire


async def test_a_refused_launch_is_a_note_and_the_sniper_keeps_waiting():
    ctx = fake_context()
    request = SniperOrderRequest(side="buy", base_asset=NEW_MINT, quote_asset="SOL", amount="0.5",
                                 min_liquidity="50", expires_at=600)
    arm = await intake.handle(NewOrder(request, "c", "snipe"), ctx)
    await trigger.handle(arm, ctx)
    await trigger.handle(LaunchRefused(arm.order_id, "liquidity 20 below minLiquidity 50", {"venue": "raydium"}),
                         ctx)
    events = await ctx.orders.events(arm.order_id)
    assert [e.status for e in events] == ["pending", "waiting", "waiting"]
    assert events[-1].data["refused"].startswith("liquidity 20")
    assert arm.order_id in ctx.resting.armed
