"""The functions with the real adapters: PostgreSQL, Redis pub/sub, the PostgreSQL chain ledger."""

from __future__ import annotations

import asyncio

import msgspec

from functions import execute, intake, quote, route
from shared.domain.events import decode_event
from shared.domain.messages import MarketOrderRequest, NewOrder, Plan
from shared.adapters.redis.publisher import event_channel
from shared.domain.states import Status


def sell_sol(key: str = "k1") -> NewOrder:
    return NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="2"), "c", key)


async def snapshot(engine, order_id: str):
    order = await engine.ctx.orders.get(order_id)
    events = await engine.ctx.orders.events(order_id)
    landed = await engine.pool.fetch("SELECT signature, amount_out FROM chain_transactions ORDER BY signature")
    return order, events, landed


async def test_each_function_run_twice_with_same_message_changes_nothing(engine):
    ctx = engine.ctx
    to_quote = await intake.handle(sell_sol(), ctx)
    before = await snapshot(engine, to_quote.order_id)
    assert await intake.handle(sell_sol(), ctx) == to_quote
    assert await snapshot(engine, to_quote.order_id) == before

    to_route = await quote.handle(to_quote, ctx)
    before = await snapshot(engine, to_quote.order_id)
    assert await quote.handle(to_quote, ctx) == to_route
    assert await snapshot(engine, to_quote.order_id) == before

    to_execute = await route.handle(to_route, ctx)
    before = await snapshot(engine, to_quote.order_id)
    assert await route.handle(to_route, ctx) == to_execute
    assert await snapshot(engine, to_quote.order_id) == before

    await execute.handle(to_execute, ctx)
    before = await snapshot(engine, to_quote.order_id)
    await execute.handle(to_execute, ctx)
    after = await snapshot(engine, to_quote.order_id)
    assert after == before
    order, events, landed = after
    assert order.status == Status.CONFIRMED
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert len(landed) == 1 and int(landed[0]["amount_out"]) == order.amount_out


async def test_events_are_stored_before_they_are_published(engine):
    ctx = engine.ctx
    pubsub = engine.redis.pubsub()
    to_quote = await intake.handle(sell_sol("k2"), ctx)
    await ctx.publisher.flush()  # `pending` is out before the subscription: only later events arrive
    await pubsub.subscribe(event_channel(engine.settings.namespace, to_quote.order_id))
    await route.handle(await quote.handle(to_quote, ctx), ctx)
    received = []
    deadline = asyncio.get_running_loop().time() + 5
    while len(received) < 2:
        assert asyncio.get_running_loop().time() < deadline, "published events did not arrive"
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is None:  # the subscribe confirmation, or nothing yet
            continue
        event = decode_event(message["data"])
        stored = await ctx.orders.events(to_quote.order_id, event.seq - 1)
        assert stored[0] == event  # already in PostgreSQL when it was published
        received.append(event.status)
    await pubsub.aclose()
    assert received == ["routing", "routed"]


async def test_concurrent_duplicate_executes_land_one_transaction(engine):
    ctx = engine.ctx
    to_quote = await intake.handle(sell_sol("k3"), ctx)
    to_execute = await route.handle(await quote.handle(to_quote, ctx), ctx)
    await asyncio.gather(*(execute.handle(to_execute, ctx) for _ in range(5)))
    order, events, landed = await snapshot(engine, to_quote.order_id)
    assert len(landed) == 1
    assert [e.status for e in events].count("confirmed") == 1
    assert msgspec.convert(order.plan, Plan).venue == order.venue
