"""The reconciler on fakes: which orders count as stuck, and the message that moves each on."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from functions import execute, intake, quote, reconcile, route, trigger
from shared.domain.messages import (
    ArmRequest, ExecuteRequest, ExpireRequest, LimitOrderRequest, MarketOrderRequest, NewOrder, QuoteRequest,
    TriggerFired,
)
from shared.domain.states import Status
from tests.fakes import fake_context

MARKET = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1")
LIMIT = LimitOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1", limit_price="100",
                          expires_at=60)


async def advance_past_deadlines(ctx, seconds: int = 3_600):
    """Let `seconds` pass on the fake clock; returns the new 'now'."""
    ctx.clock._now += timedelta(seconds=seconds)
    return ctx.clock.now()


async def test_fresh_orders_are_left_alone():
    ctx = fake_context()
    await intake.handle(NewOrder(MARKET, "c", "k"), ctx)
    assert await reconcile.stalled(ctx, ctx.clock.now()) == []


async def test_each_pipeline_status_gets_the_message_for_the_step_in_front_of_it():
    ctx = fake_context()
    pending = await intake.handle(NewOrder(MARKET, "c", "pending"), ctx)
    to_route = await quote.handle(await intake.handle(NewOrder(MARKET, "c", "routing"), ctx), ctx)
    to_execute = await route.handle(
        await quote.handle(await intake.handle(NewOrder(MARKET, "c", "routed"), ctx), ctx), ctx)
    arm = await intake.handle(NewOrder(LIMIT, "c", "limit"), ctx)
    now = await advance_past_deadlines(ctx)

    by_order = {m.order_id: m for m in await reconcile.stalled(ctx, now)}

    assert by_order[pending.order_id] == pending  # pending market: quote again
    assert isinstance(by_order[to_route.order_id], QuoteRequest)  # routing: quote finds its stored quotes
    assert by_order[to_execute.order_id] == to_execute  # routed: execute the stored plan
    assert by_order[arm.order_id] == ArmRequest(arm.order_id)  # pending limit: arm it


async def test_re_driving_a_stuck_order_finishes_it_once():
    ctx = fake_context()
    to_execute = await route.handle(
        await quote.handle(await intake.handle(NewOrder(MARKET, "c", "k"), ctx), ctx), ctx)
    await execute.handle(to_execute, ctx)  # confirmed
    [signature] = ctx.venues.store.landed
    now = await advance_past_deadlines(ctx)
    assert await reconcile.stalled(ctx, now) == []  # terminal orders are never re-driven
    assert list(ctx.venues.store.landed) == [signature]


async def test_a_submitted_order_is_re_driven_to_execute_and_lands_once():
    ctx = fake_context()
    to_execute = await route.handle(
        await quote.handle(await intake.handle(NewOrder(MARKET, "c", "k"), ctx), ctx), ctx)
    order_id = to_execute.order_id
    await ctx.record(order_id, Status.BUILDING, {})
    await ctx.record(order_id, Status.SUBMITTED, {})  # the worker died here
    now = await advance_past_deadlines(ctx)
    [message] = await reconcile.stalled(ctx, now)
    assert isinstance(message, ExecuteRequest)
    await execute.handle(message, ctx)
    await execute.handle(message, ctx)  # and a late redelivery of the original job
    assert (await ctx.orders.get(order_id)).status == Status.CONFIRMED
    assert len(ctx.venues.store.landed) == 1


async def test_a_triggered_order_is_re_driven_with_its_stored_trigger():
    ctx = fake_context()
    arm = await intake.handle(NewOrder(LIMIT, "c", "k"), ctx)
    await trigger.handle(arm, ctx)
    await trigger.handle(TriggerFired(arm.order_id, {"venue": "raydium", "price": "150"}), ctx)
    now = await advance_past_deadlines(ctx)
    [message] = await reconcile.stalled(ctx, now)
    assert message == TriggerFired(arm.order_id, {"venue": "raydium", "price": "150"})
    assert isinstance(await trigger.handle(message, ctx), QuoteRequest)


async def test_deadlines_follow_each_steps_timeouts():
    ctx = fake_context()
    settings = ctx.settings
    to_execute = await route.handle(
        await quote.handle(await intake.handle(NewOrder(MARKET, "c", "routed"), ctx), ctx), ctx)
    pending = await intake.handle(NewOrder(MARKET, "c", "pending"), ctx)
    quote_deadline = settings.step_deadline_s("quote")
    assert settings.step_deadline_s("execute") > quote_deadline
    now = await advance_past_deadlines(ctx, quote_deadline + 1)
    stuck = {m.order_id for m in await reconcile.stalled(ctx, now)}
    assert pending.order_id in stuck and to_execute.order_id not in stuck  # execute gets longer


async def test_with_a_transport_that_knows_what_it_holds_only_orders_whose_message_was_lost_are_re_driven():
    """Unchanged for two heartbeats plus grace, an order is re-driven once the queues no longer
    hold its message, however long its step's timeouts; one still held is left alone however old."""
    ctx = fake_context()
    lost = await intake.handle(NewOrder(MARKET, "c", "lost"), ctx)
    held = await route.handle(
        await quote.handle(await intake.handle(NewOrder(MARKET, "c", "held"), ctx), ctx), ctx)
    asked: list[list[str]] = []

    async def in_hand(order_ids: list[str]) -> set[str]:
        asked.append(sorted(order_ids))
        return {held.order_id} & set(order_ids)

    assert await reconcile.stalled(ctx, ctx.clock.now(), in_hand) == []
    assert asked == [[], [], []]  # nothing has been quiet long enough to ask about
    now = await advance_past_deadlines(ctx, ctx.settings.stall_after_s() + 1)
    assert ctx.settings.stall_after_s() + 1 < ctx.settings.step_deadline_s("quote")
    assert [m.order_id for m in await reconcile.stalled(ctx, now, in_hand)] == [lost.order_id]
    now = await advance_past_deadlines(ctx)  # an hour on: still held, still left alone
    assert [m.order_id for m in await reconcile.stalled(ctx, now, in_hand)] == [lost.order_id]


async def test_waiting_orders_past_expiry_are_expired_and_others_keep_resting():
    ctx = fake_context()
    arm = await intake.handle(NewOrder(LIMIT, "c", "k"), ctx)
    await trigger.handle(arm, ctx)
    assert await reconcile.stalled(ctx, ctx.clock.now()) == []
    now = await advance_past_deadlines(ctx, 60 + ctx.settings.stall_grace_s + 1)
    assert await reconcile.stalled(ctx, now) == [ExpireRequest(arm.order_id)]


async def test_the_trigger_index_is_rebuilt_once_after_it_was_lost():
    ctx = fake_context()
    for n in range(3):
        await trigger.handle(await intake.handle(NewOrder(LIMIT, "c", f"k{n}"), ctx), ctx)
    ctx.resting.armed.clear()  # Redis lost the index
    assert await reconcile.rearm_if_lost(ctx) == 3
    assert len(ctx.resting.armed) == 3
    assert await reconcile.rearm_if_lost(ctx) == 0  # intact now: no second rebuild


async def test_orders_waiting_for_a_slow_step_cannot_hide_one_stuck_in_front_of_a_fast_step(monkeypatch):
    monkeypatch.setattr(reconcile, "BATCH", 2)
    ctx = fake_context()
    for n in range(3):  # older, in front of execute, but still within execute's long deadline
        to_execute = await route.handle(
            await quote.handle(await intake.handle(NewOrder(MARKET, "c", f"slow{n}"), ctx), ctx), ctx)
    stuck = await intake.handle(NewOrder(MARKET, "c", "stuck"), ctx)
    now = await advance_past_deadlines(ctx, ctx.settings.step_deadline_s("quote") + 1)
    assert now - timedelta(seconds=ctx.settings.step_deadline_s("execute")) < (
        await ctx.orders.get(to_execute.order_id)).updated_at
    assert [m.order_id for m in await reconcile.stalled(ctx, now)] == [stuck.order_id]


async def test_a_split_left_submitted_with_one_leg_landed_ends_partially_filled_once():
    """The worker died after the chain landed one leg and refused the other: the re-driven
    execute finds both landings in the ledger and ends the order partially filled, once."""
    ctx = fake_context()
    big = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="2000")
    to_execute = await route.handle(await quote.handle(await intake.handle(NewOrder(big, "c", "k"), ctx), ctx), ctx)
    first, second = to_execute.plan.legs
    short = msgspec.structs.replace(second, min_amount_out=second.expected_amount_out + 1)
    plan = msgspec.structs.replace(to_execute.plan, legs=[first, short])
    await ctx.record(to_execute.order_id, Status.BUILDING, {})
    await ctx.record(to_execute.order_id, Status.SUBMITTED, {})
    for tx in execute.transactions(to_execute.order_id, plan):
        await ctx.chain.confirm(tx)  # landed (or refused) on chain; then the worker died
    now = await advance_past_deadlines(ctx)
    [message] = await reconcile.stalled(ctx, now)
    await execute.handle(msgspec.structs.replace(message, plan=plan), ctx)
    await execute.handle(msgspec.structs.replace(message, plan=plan), ctx)  # a late redelivery changes nothing
    events = await ctx.orders.events(to_execute.order_id)
    assert [e.status for e in events].count(Status.PARTIALLY_FILLED) == 1
    assert events[-1].data["amountIn"] == first.amount_in and events[-1].data["unfilledAmountIn"] == second.amount_in
    assert await reconcile.stalled(ctx, await advance_past_deadlines(ctx)) == []  # terminal: left alone
