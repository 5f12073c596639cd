"""What PostgreSQL says must run next, on real Redis and PostgreSQL: the reconciler re-drives
orders stuck in every pipeline status, and after every Redis key of the engine is deleted
(FLUSHALL, for one namespace) mid-pipeline, every order still completes exactly once and
resting orders are re-armed and still fire."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from decimal import Decimal

import msgspec

from functions import execute, intake, quote, reconcile, route, trigger
from shared.adapters.redis.admission import RedisClientLimits
from shared.domain.clients import ApiClient
from shared.domain.messages import (ArmRequest, ExecuteRequest, LimitOrderRequest, MarketOrderRequest, NewOrder, Plan,
                             QuoteRequest, TriggerFired)
from shared.domain.states import TERMINAL_STATUSES, Status
from functions.desk import OrderDesk
from shared.domain.tokens import SOL, USDC
from shared.adapters.redis.connection import forget_namespace

STEPS = ("trigger", "quote", "route", "execute")
SLIPPAGE_BPS = 1_000
"""Generous: orders set up early execute after later ones moved the pools a little."""
CLIENT = ApiClient("recovery", orders_per_minute=100_000, max_in_flight=100_000)


class Crash(Exception):
    """A process dying at this point (the step's job is then lost with it)."""


class CrashingChain:
    """The real simulated chain, crashing at one point: before building, before confirming, or
    after the transaction landed (the crash between landing and recording `confirmed`). With
    `crash_leg`, only that leg crashes before landing; the others land."""

    def __init__(self, chain, at: str, crash_leg: int | None = None) -> None:
        self._chain, self._at, self._crash_leg = chain, at, crash_leg

    async def build(self, tx) -> None:
        if self._at == "build":
            raise Crash("before build")
        await self._chain.build(tx)

    async def send(self, tx) -> None:
        await self._chain.send(tx)

    async def confirm(self, tx, built_now: bool = False):
        if self._at == "confirm" and (self._crash_leg is None or tx.leg == self._crash_leg):
            raise Crash("before the transaction landed")
        landing = await self._chain.confirm(tx, built_now)
        if self._at == "landed":
            raise Crash("after the transaction landed")
        return landing


def market(amount: str = "1", side: str = "sell") -> MarketOrderRequest:
    return MarketOrderRequest(side=side, base_asset="SOL", quote_asset="USDC", amount=amount,
                              slippage_bps=SLIPPAGE_BPS)


def limit(price: str, amount: str = "1") -> LimitOrderRequest:
    return LimitOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount=amount, limit_price=price,
                             expires_at=3600, slippage_bps=SLIPPAGE_BPS)


async def start_workers(engine) -> None:
    """SAQ workers for every step, without the reconciler's cron: each test runs the reconciler
    itself, so what re-drives an order is the test's doing alone."""
    await engine.run_workers(STEPS, reconciler=False)


async def age_everything(engine, seconds: int = 3600) -> None:
    """Time passes: every order has sat in its status far longer than any step's deadline."""
    await engine.pool.execute(f"UPDATE orders SET updated_at = updated_at - interval '{seconds} seconds'")


async def statuses(engine, order_ids) -> dict[str, Status]:
    return {order_id: (await engine.ctx.orders.get(order_id)).status for order_id in order_ids}


async def wait_for(engine, wanted: dict[str, set[Status]], seconds: float = 20) -> dict[str, Status]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        now = await statuses(engine, wanted)
        if all(now[order_id] in allowed for order_id, allowed in wanted.items()):
            return now
        assert asyncio.get_running_loop().time() < deadline, {i: s for i, s in now.items() if s not in wanted[i]}
        await asyncio.sleep(0.05)


async def assert_each_landed_once(engine, order_ids) -> None:
    """Every confirmed order: one landed transaction per leg of its plan, their outputs summing to
    the order's; every order: gapless seqs and no status recorded twice."""
    landed = {str(row["order_id"]): row for row in await engine.pool.fetch(
        "SELECT order_id, count(*) AS n, count(DISTINCT leg) AS legs, sum(amount_out) AS out"
        " FROM chain_transactions GROUP BY order_id")}
    for order_id in order_ids:
        order = await engine.ctx.orders.get(order_id)
        events = await engine.ctx.orders.events(order_id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), order_id
        repeated = [s for s, n in Counter(e.status for e in events).items() if n > 1]
        assert repeated == [], (order_id, [e.status for e in events])
        if order.status == Status.CONFIRMED:
            legs = len(msgspec.convert(order.plan, Plan).legs)
            row = landed[str(order_id)]
            assert row["n"] == row["legs"] == legs, (order_id, row, legs)
            assert int(row["out"]) == order.amount_out == events[-1].data["amountOut"]
        else:
            assert str(order_id) not in landed


# --- the reconciler, status by status -------------------------------------------------------------

async def stuck_orders(engine) -> dict[str, tuple[str, type]]:
    """One order left in each pipeline status by the real functions, its next message dropped
    (the job lost): {order id: (what it is, the message the reconciler must re-drive it with)}."""
    ctx = engine.ctx
    stuck: dict[str, tuple[str, type]] = {}
    n = iter(range(100))

    def new(request) -> NewOrder:
        return NewOrder(request, CLIENT.client_id, f"stuck-{next(n)}")

    to_quote = await intake.handle(new(market()), ctx)
    stuck[to_quote.order_id] = ("pending market", QuoteRequest)

    to_arm = await intake.handle(new(limit("100")), ctx)
    assert isinstance(to_arm, ArmRequest)
    stuck[to_arm.order_id] = ("pending limit", ArmRequest)

    to_arm = await intake.handle(new(limit("100")), ctx)
    await trigger.handle(to_arm, ctx)  # waiting, armed; at ~150 USDC its 100 limit is crossed:
    assert await trigger.handle(TriggerFired(to_arm.order_id, {"price": "150"}), ctx) is not None
    stuck[to_arm.order_id] = ("triggered", TriggerFired)

    to_route = await quote.handle(await intake.handle(new(market()), ctx), ctx)
    stuck[to_route.order_id] = ("routing", QuoteRequest)

    to_execute = await route.handle(await quote.handle(await intake.handle(new(market()), ctx), ctx), ctx)
    stuck[to_execute.order_id] = ("routed", ExecuteRequest)

    async def executed_until_crash(request, at: str, crash_leg: int | None = None) -> ExecuteRequest:
        message = await route.handle(await quote.handle(await intake.handle(new(request), ctx), ctx), ctx)
        crashing = dataclasses.replace(ctx, chain=CrashingChain(ctx.chain, at, crash_leg))
        try:
            await execute.handle(message, crashing)
        except Crash:
            pass
        else:
            raise AssertionError("execute did not reach the crash")
        return message

    building = await executed_until_crash(market(), "build")
    stuck[building.order_id] = ("building", ExecuteRequest)
    submitted = await executed_until_crash(market(), "confirm")
    stuck[submitted.order_id] = ("submitted, not landed", ExecuteRequest)
    landed = await executed_until_crash(market(), "landed")
    stuck[landed.order_id] = ("submitted, landed", ExecuteRequest)
    split = await executed_until_crash(market("200"), "confirm", crash_leg=1)
    assert len(split.plan.legs) == 2, "200 SOL is expected to split across both venues"
    stuck[split.order_id] = ("split submitted, one leg landed", ExecuteRequest)
    return stuck


async def test_the_reconciler_re_drives_an_order_stuck_in_every_pipeline_status(engine):
    stuck = await stuck_orders(engine)
    where = await statuses(engine, stuck)
    assert Counter(where.values()) == {Status.PENDING: 2, Status.TRIGGERED: 1, Status.ROUTING: 1, Status.ROUTED: 1,
                                       Status.BUILDING: 1, Status.SUBMITTED: 3}
    # Before their deadlines nothing is stuck; long after, each order gets the message its next step needs.
    assert await reconcile.stalled(engine.ctx, engine.ctx.clock.now()) == []
    await age_everything(engine)
    messages = await reconcile.stalled(engine.ctx, engine.ctx.clock.now())
    assert {m.order_id: type(m) for m in messages} == {i: kind for i, (_, kind) in stuck.items()}
    assert len(messages) == len(stuck)

    await start_workers(engine)
    for message in messages:  # the re-drive, and the original job turning up as well: harmless
        await engine.queues.send(message)
        await engine.queues.send(message)
    pending_limit = next(i for i, (what, _) in stuck.items() if what == "pending limit")
    done = await wait_for(engine, {i: {Status.WAITING} if i == pending_limit else TERMINAL_STATUSES for i in stuck})
    assert {stuck[i][0]: s for i, s in done.items() if s != Status.CONFIRMED} == {"pending limit": Status.WAITING}
    await assert_each_landed_once(engine, stuck)
    # The resting one is armed again (it was pending: never armed), and nothing is stuck any more.
    assert await engine.resting.count_limits(SOL.mint, USDC.mint, "sell") == 1
    await age_everything(engine)
    assert await reconcile.stalled(engine.ctx, engine.ctx.clock.now()) == []


async def test_a_second_reconciler_round_while_the_first_re_drive_runs_lands_nothing_twice(engine):
    stuck = await stuck_orders(engine)
    await age_everything(engine)
    first = await reconcile.stalled(engine.ctx, engine.ctx.clock.now())
    await start_workers(engine)
    for message in first:
        await engine.queues.send(message)
    second = await reconcile.stalled(engine.ctx, engine.ctx.clock.now())  # whatever has not moved yet
    for message in second:
        await engine.queues.send(message)
    third = [await reconcile.redrive(await engine.ctx.orders.get(i), engine.ctx) for i in stuck]
    await asyncio.gather(*(engine.queues.send(m) for m in third if m is not None))
    await wait_for(engine, {i: {Status.WAITING} if kind is ArmRequest else TERMINAL_STATUSES
                            for i, (_, kind) in stuck.items()})
    assert {s for s in (await statuses(engine, stuck)).values()} == {Status.CONFIRMED, Status.WAITING}
    await assert_each_landed_once(engine, stuck)


# --- Redis loses everything mid-pipeline -----------------------------------------------------------

async def forget_all_redis_keys(engine) -> int:
    """FLUSHALL, for this test's namespace only (the Redis server is shared): queues, jobs, the
    trigger index and its marker, rate and in-flight counters."""
    return await forget_namespace(engine.redis, engine.settings.namespace)


async def test_after_redis_loses_everything_mid_pipeline_every_order_completes_and_limits_still_fire(engine):
    ctx = engine.ctx
    desk = OrderDesk(ctx, engine.queues, RedisClientLimits(engine.redis, engine.settings.namespace))
    await engine.watcher.move_price(SOL, USDC, Decimal(150), None)

    # Orders at every point of the pipeline, their next jobs waiting in Redis (no worker runs yet).
    queued_quotes = [(await desk.submit(msgspec.json.encode(
        {"type": "market", "side": side, "baseAsset": "SOL", "quoteAsset": "USDC", "amount": amount,
         "slippageBps": SLIPPAGE_BPS}), CLIENT)).order_id
        for side, amount in [("sell", "1"), ("buy", "150"), ("sell", "0.5"), ("buy", "75"), ("sell", "2")] * 2]
    queued_routes, queued_executes = [], []
    for n in range(2):
        to_route = await quote.handle(await intake.handle(NewOrder(market(), "c", f"route-{n}"), ctx), ctx)
        await engine.queues.send(to_route)
        queued_routes.append(to_route.order_id)
    for n, amount in enumerate(("1", "500", "3")):  # 500 SOL: a split, two transactions
        to_execute = await route.handle(
            await quote.handle(await intake.handle(NewOrder(market(amount), "c", f"exec-{n}"), ctx), ctx), ctx)
        assert len(to_execute.plan.legs) == (2 if amount == "500" else 1)
        await engine.queues.send(to_execute)
        queued_executes.append(to_execute.order_id)
    resting = []
    for n in range(2):  # armed and waiting: sell 1 SOL at 200, far above 150
        to_arm = await intake.handle(NewOrder(limit("200"), "c", f"rest-{n}"), ctx)
        await trigger.handle(to_arm, ctx)
        resting.append(to_arm.order_id)
    assert await reconcile.rearm_if_lost(ctx) == 2  # the first round marks the index as built
    unarmed = (await desk.submit(msgspec.json.encode(msgspec.to_builtins(limit("200"))), CLIENT)).order_id
    moving = queued_quotes + queued_routes + queued_executes
    assert await engine.resting.count_limits(SOL.mint, USDC.mint, "sell") == 2

    assert await forget_all_redis_keys(engine) > 0
    await start_workers(engine)
    await asyncio.sleep(0.5)
    assert set((await statuses(engine, moving)).values()) == {Status.PENDING, Status.ROUTING, Status.ROUTED}
    assert (await ctx.orders.get(unarmed)).status == Status.PENDING  # its ArmRequest went with Redis
    assert await engine.resting.count_limits(SOL.mint, USDC.mint, "sell") == 0  # and the index too

    # The reconciler's round (run by hand, once the orders are past their deadlines).
    assert await reconcile.rearm_if_lost(ctx) == 2
    assert await reconcile.rearm_if_lost(ctx) == 0
    await age_everything(engine)
    messages = await reconcile.stalled(ctx, ctx.clock.now())
    assert {m.order_id for m in messages} == {*moving, unarmed}
    for message in messages:
        await engine.queues.send(message)
    await wait_for(engine, {**{i: {Status.CONFIRMED} for i in moving}, **{i: {Status.WAITING} for i in resting},
                            unarmed: {Status.WAITING}})
    assert await engine.resting.count_limits(SOL.mint, USDC.mint, "sell") == 3

    # The re-armed limits still fire on a price move, once each, and fill at or above their limit.
    assert await engine.watcher.prices_changed() == 0  # still at ~150
    _, fired = await engine.watcher.move_price(SOL, USDC, Decimal(250), None)
    assert fired == 3
    assert await engine.watcher.prices_changed() == 0
    await wait_for(engine, {i: {Status.CONFIRMED} for i in [*resting, unarmed]})
    for order_id in [*resting, unarmed]:
        order = await ctx.orders.get(order_id)
        assert order.executed_price >= Decimal(200)
        assert [e.status for e in await ctx.orders.events(order_id)] == [
            "pending", "waiting", "triggered", "routing", "routed", "building", "submitted", "confirmed"]
    await assert_each_landed_once(engine, [*moving, *resting, unarmed])
