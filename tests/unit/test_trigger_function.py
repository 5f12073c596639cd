"""functions/trigger.py on in-memory fakes: orders rest, fire once, expire, are cancelled, note refused launches."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from solders.pubkey import Pubkey

from functions import intake, trigger
from functions.pipeline import PIPELINE, step_for
from shared.domain.messages import (
    ArmRequest,
    ExpireRequest,
    LaunchRefused,
    LimitOrderRequest,
    NewOrder,
    QuoteRequest,
    SniperOrderRequest,
    TriggerFired,
)
from shared.domain.resting import floor_amount_out
from shared.domain.states import Status
from shared.domain.tokens import SOL, USDC, Token
from shared.domain.orders import FailureReason
from tests.fakes import fake_context

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIMIT_NOT_MET = FailureReason.LIMIT_NOT_MET
"""The error a client sees when a fired limit order cannot fill at its limit."""
MICROSECOND = timedelta(microseconds=1)
NEW_MINT = str(Pubkey(bytes(range(1, 33))))
NEW_TOKEN = Token("NEWT", NEW_MINT, 6)


class ManualClock:
    """Stands still until the test moves it, so expiry boundaries can be hit exactly."""

    def __init__(self, now: datetime = NOW) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


def context():
    return dataclasses.replace(fake_context(), clock=ManualClock())


def limit_sell(amount: str = "1.5", limit: str = "180.5", key: str = "k1", expires_at: int | str = 3600) -> NewOrder:
    request = LimitOrderRequest(
        side="sell", base_asset="SOL", quote_asset="USDC", amount=amount, limit_price=limit, expires_at=expires_at
    )
    return NewOrder(request, "client-a", key)


def sniper(amount: str = "1", **conditions) -> NewOrder:
    request = SniperOrderRequest(
        side="buy", base_asset=NEW_MINT, quote_asset="SOL", amount=amount, expires_at=3600, **conditions
    )
    return NewOrder(request, "client-a", "s1")


async def resting(ctx, new: NewOrder) -> str:
    """Intake then arm: the order is `waiting` and indexed. Returns its id."""
    arm = await intake.handle(new, ctx)
    assert isinstance(arm, ArmRequest)
    assert await trigger.handle(arm, ctx) is None
    return arm.order_id


async def statuses(ctx, order_id: str) -> list[str]:
    return [e.status for e in await ctx.orders.events(order_id)]


async def run_chain(ctx, message) -> None:
    while message is not None:
        message = await PIPELINE[step_for(message)].handle(message, ctx)


FIRED = {"venue": "raydium", "price": "181.2", "limitPrice": "180.5"}


# --- arming ----------------------------------------------------------------------------------


async def test_arming_makes_a_limit_order_wait_until_its_expiry():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    order = await ctx.orders.get(order_id)
    events = await ctx.orders.events(order_id)
    assert order.status == Status.WAITING and order.expires_at == NOW + timedelta(hours=1)
    assert [(e.seq, e.status) for e in events] == [(1, "pending"), (2, "waiting")]
    assert events[1].data == {"expiresAt": "2026-11-25T13:00:00.000Z"}
    assert list(ctx.resting.armed) == [order_id]
    indexed = ctx.resting.armed[order_id]
    assert (indexed.side, indexed.limit_price, indexed.expires_at) == ("sell", Decimal("180.5"), order.expires_at)
    assert ctx.publisher.events == events


async def test_a_redelivered_arm_request_re_arms_without_a_second_event():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    ctx.resting.armed.clear()  # the index lost it
    assert await trigger.handle(ArmRequest(order_id), ctx) is None
    assert await statuses(ctx, order_id) == ["pending", "waiting"]
    assert order_id in ctx.resting.armed


async def test_an_order_cancelled_before_arming_never_rests():
    ctx = context()
    arm = await intake.handle(limit_sell(), ctx)
    assert await trigger.cancel(arm.order_id, ctx) is not None
    assert await trigger.handle(arm, ctx) is None
    assert await statuses(ctx, arm.order_id) == ["pending", "cancelled"]
    assert ctx.resting.armed == {}


# --- firing ------------------------------------------------------------------------------------


async def test_a_fired_limit_order_is_triggered_and_goes_to_quote_with_its_limit_as_floor():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    message = await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    # 1.5 SOL at ≥ 180.5 USDC/SOL: at least 1_500_000_000 · 0.1805 = 270_750_000 USDC units.
    assert message == QuoteRequest(
        order_id, SOL.mint, USDC.mint, 1_500_000_000, 50, floor_amount_out=270_750_000, floor_reason=LIMIT_NOT_MET,
        side="sell",
    )
    triggered = (await ctx.orders.events(order_id))[-1]
    assert (triggered.seq, triggered.status, triggered.data) == (3, "triggered", FIRED)
    assert (await ctx.orders.get(order_id)).status == Status.TRIGGERED
    assert ctx.resting.armed == {}


async def test_a_second_delivery_of_the_trigger_writes_nothing_and_hands_on_the_same_quote():
    """At-least-once delivery: a crash after `triggered` was stored but before the hand-off
    must not strand the order, so the same QuoteRequest comes back; `quote` dedupes it."""
    ctx = context()
    order_id = await resting(ctx, limit_sell(limit="140"))
    first = await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    published = list(ctx.publisher.events)
    second = await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    assert second == first
    assert await statuses(ctx, order_id) == ["pending", "waiting", "triggered"]
    assert ctx.publisher.events == published
    await run_chain(ctx, first)
    await run_chain(ctx, second)
    assert await statuses(ctx, order_id) == [
        "pending", "waiting", "triggered", "routing", "routed", "building", "submitted", "confirmed"
    ]
    assert len(ctx.venues.store.landed) == 1


async def test_a_trigger_delivered_after_the_order_moved_on_returns_nothing():
    ctx = context()
    order_id = await resting(ctx, limit_sell(limit="140"))
    await run_chain(ctx, TriggerFired(order_id, FIRED))
    events = await ctx.orders.events(order_id)
    assert events[-1].status == "confirmed"
    assert await trigger.handle(TriggerFired(order_id, FIRED), ctx) is None
    assert await ctx.orders.events(order_id) == events


async def test_a_fired_limit_order_fills_no_worse_than_its_limit():
    ctx = context()
    order_id = await resting(ctx, limit_sell(limit="140"))  # the pools pay ~150: reachable
    to_quote = await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    assert to_quote.floor_amount_out == 210_000_000  # 1.5 · 140 USDC
    await run_chain(ctx, to_quote)
    order = await ctx.orders.get(order_id)
    assert order.status == Status.CONFIRMED
    assert order.min_amount_out >= 210_000_000  # the larger of the limit and the slippage bound
    assert order.amount_out >= order.min_amount_out
    assert order.executed_price >= Decimal(140)


async def test_a_limit_the_market_no_longer_pays_fails_rather_than_fill_worse():
    ctx = context()
    order_id = await resting(ctx, limit_sell(limit="180.5"))  # the pools pay ~150
    await run_chain(ctx, TriggerFired(order_id, FIRED))
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "waiting", "triggered", "routing", "failed"]
    assert events[-1].data["error"] == LIMIT_NOT_MET and events[-1].data["floorAmountOut"] == 270_750_000
    assert ctx.venues.store.landed == {}


async def test_a_trigger_for_an_unknown_order_does_nothing():
    ctx = context()
    assert await trigger.handle(TriggerFired("00000000-0000-7000-8000-999999999999", FIRED), ctx) is None
    assert ctx.publisher.events == []


async def test_trigger_refuses_a_message_it_does_not_take():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    with pytest.raises(TypeError):
        await trigger.handle(QuoteRequest(order_id, SOL.mint, USDC.mint, 1, 50), ctx)


def test_every_trigger_message_goes_to_the_trigger_function():
    for message in (ArmRequest("o"), TriggerFired("o"), ExpireRequest("o"), LaunchRefused("o", "r")):
        assert step_for(message) == "trigger"


# --- cancelling -------------------------------------------------------------------------------


async def test_a_cancelled_order_ignores_its_trigger():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    cancelled = await trigger.cancel(order_id, ctx)
    assert (cancelled.status, cancelled.data) == ("cancelled", {"reason": "cancelled by client"})
    assert ctx.resting.armed == {}
    assert await trigger.handle(TriggerFired(order_id, FIRED), ctx) is None
    assert await statuses(ctx, order_id) == ["pending", "waiting", "cancelled"]
    assert (await ctx.orders.get(order_id)).status == Status.CANCELLED
    assert ctx.resting.armed == {}
    assert await trigger.cancel(order_id, ctx) is None  # a second cancel changes nothing
    assert await statuses(ctx, order_id) == ["pending", "waiting", "cancelled"]


async def test_a_triggered_order_can_no_longer_be_cancelled():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    assert await trigger.cancel(order_id, ctx) is None
    assert (await ctx.orders.get(order_id)).status == Status.TRIGGERED


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "expires"), [(-MICROSECOND, False), (timedelta(0), True), (MICROSECOND, True)])
async def test_expiry_boundary(offset: timedelta, expires: bool):
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    expires_at = (await ctx.orders.get(order_id)).expires_at
    ctx.clock.moment = expires_at + offset
    assert await trigger.handle(ExpireRequest(order_id), ctx) is None
    order = await ctx.orders.get(order_id)
    if expires:
        assert order.status == Status.EXPIRED
        last = (await ctx.orders.events(order_id))[-1]
        assert (last.status, last.data) == ("expired", {"expiresAt": "2026-11-25T13:00:00.000Z"})
        assert ctx.resting.armed == {}
    else:
        assert order.status == Status.WAITING
        assert await statuses(ctx, order_id) == ["pending", "waiting"]
        assert order_id in ctx.resting.armed


async def test_an_expired_order_is_not_triggered_afterwards():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    ctx.clock.moment = NOW + timedelta(hours=2)
    await trigger.handle(ExpireRequest(order_id), ctx)
    await trigger.handle(ExpireRequest(order_id), ctx)  # redelivered: no second event
    assert await trigger.handle(TriggerFired(order_id, FIRED), ctx) is None
    assert await statuses(ctx, order_id) == ["pending", "waiting", "expired"]


async def test_a_late_expiry_does_not_undo_a_trigger():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    await trigger.handle(TriggerFired(order_id, FIRED), ctx)
    ctx.clock.moment = NOW + timedelta(hours=2)
    await trigger.handle(ExpireRequest(order_id), ctx)
    assert await statuses(ctx, order_id) == ["pending", "waiting", "triggered"]


async def test_a_trigger_arriving_after_the_expiry_expires_the_order_instead():
    ctx = context()
    order_id = await resting(ctx, limit_sell())
    ctx.clock.moment = NOW + timedelta(hours=1, seconds=1)  # past expiresAt; no ExpireRequest yet
    assert await trigger.handle(TriggerFired(order_id, FIRED), ctx) is None
    assert (await ctx.orders.get(order_id)).status == Status.EXPIRED


# --- sniper orders ------------------------------------------------------------------------------


LAUNCH = {"venue": "raydium", "liquidity": "2000", "price": "0.001", "priceImpactBps": 35}


async def test_a_refused_launch_is_noted_and_the_sniper_keeps_waiting():
    ctx = context()
    order_id = await resting(ctx, sniper(min_liquidity="5000"))
    reason = "liquidity 2000 below minLiquidity 5000"
    assert await trigger.handle(LaunchRefused(order_id, reason, LAUNCH), ctx) is None
    note = (await ctx.orders.events(order_id))[-1]
    assert (note.seq, note.status, note.data) == (3, "waiting", {"refused": reason, "launch": LAUNCH})
    assert ctx.publisher.events[-1] == note
    assert (await ctx.orders.get(order_id)).status == Status.WAITING
    assert order_id in ctx.resting.armed
    # A later launch that passes still fires it.
    ctx.tokens.add(NEW_TOKEN)
    assert isinstance(await trigger.handle(TriggerFired(order_id, {"launch": LAUNCH}), ctx), QuoteRequest)
    assert await statuses(ctx, order_id) == ["pending", "waiting", "waiting", "triggered"]


async def test_a_refused_launch_for_a_cancelled_sniper_writes_nothing():
    ctx = context()
    order_id = await resting(ctx, sniper())
    await trigger.cancel(order_id, ctx)
    assert await trigger.handle(LaunchRefused(order_id, "too shallow", LAUNCH), ctx) is None
    assert await statuses(ctx, order_id) == ["pending", "waiting", "cancelled"]


async def test_a_fired_sniper_buys_only_on_the_launched_pool_and_never_above_max_price():
    ctx = context()
    order_id = await resting(ctx, sniper(max_price="0.001"))
    ctx.tokens.add(NEW_TOKEN)  # the launch lists the token
    message = await trigger.handle(TriggerFired(order_id, {"launch": LAUNCH}), ctx)
    # 1 SOL at ≤ 0.001 SOL/NEWT: ≥ 1,000 NEWT = 1_000_000_000 units (6 decimals).
    assert message.floor_amount_out == 1_000_000_000
    assert message.floor_amount_out == floor_amount_out("buy", 10**9, Decimal("0.001"), NEW_TOKEN, SOL)
    assert (message.venues, message.input_mint, message.output_mint, message.amount_in) == (
        ["raydium"], SOL.mint, NEW_MINT, 10**9
    )


async def test_a_sniper_without_max_price_has_no_floor_but_keeps_to_its_pool():
    ctx = context()
    order_id = await resting(ctx, sniper())
    message = await trigger.handle(TriggerFired(order_id, {"launch": {"venue": "meteora"}}), ctx)
    assert (message.floor_amount_out, message.venues) == (0, ["meteora"])


def _launch_pool(ctx) -> None:
    """1,000,000 NEWT against 1,000 SOL on Raydium: 0.001 SOL/NEWT before fee and impact."""
    ctx.tokens.add(NEW_TOKEN)
    ctx.venues.store.market.launch("raydium", NEW_TOKEN, SOL, 1_000_000 * 10**6, 1_000 * 10**9)


async def test_a_fired_sniper_fills_on_the_new_pool_within_its_max_price():
    ctx = context()
    # Full slippage: only maxPrice bounds the fill.
    order_id = await resting(ctx, sniper(max_price="0.0011", slippage_bps=10_000))
    _launch_pool(ctx)
    await run_chain(ctx, TriggerFired(order_id, {"launch": LAUNCH}))
    order = await ctx.orders.get(order_id)
    assert order.status == Status.CONFIRMED and order.venue == "raydium"
    # ceil(10^9 / 1.1) = ceil(909_090_909.09…) = 909_090_910 units: 1 SOL never buys fewer than 909.09091 NEWT.
    assert order.min_amount_out == 909_090_910
    assert order.amount_out >= 909_090_910


async def test_a_fired_sniper_whose_fill_would_pass_max_price_fails_instead():
    ctx = context()
    order_id = await resting(ctx, sniper(max_price="0.001", slippage_bps=10_000))
    _launch_pool(ctx)  # after the 25 bps fee and impact 1 SOL buys ~996.5 NEWT: above 0.001 SOL/NEWT
    await run_chain(ctx, TriggerFired(order_id, {"launch": LAUNCH}))
    events = await ctx.orders.events(order_id)
    assert [e.status for e in events] == ["pending", "waiting", "triggered", "routing", "failed"]
    assert events[-1].data["floorAmountOut"] == 1_000_000_000
    assert ctx.venues.store.landed == {}
