"""Limit and sniper orders on real Redis and PostgreSQL: the trigger index, races, exactly once."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from functions import intake, trigger
from functions.market_driver import PriceWatcher, fire_now
from shared.adapters.redis.resting_index import RedisRestingIndex
from shared.domain.messages import ArmRequest, LaunchRefused, LimitOrderRequest, NewOrder, SniperOrderRequest, TriggerFired
from shared.domain.orders import OrderRecord
from shared.domain.resting import RestingOrder
from shared.domain.states import Status
from shared.domain.tokens import SOL, USDC, Token, TokenRegistry
from shared.domain.market import LaunchPlan
from shared.adapters.redis.connection import forget_namespace
from tests.fakes import FixedClock


class CapturingQueues:
    """Stands in for the SAQ queues and the firing: keeps what the watcher would enqueue or fire."""

    def __init__(self) -> None:
        self.sent: list = []

    async def send(self, message) -> None:
        self.sent.append(message)

    async def fire(self, message: TriggerFired) -> bool:
        self.sent.append(message)
        return True


def watcher_on(engine, index, queues, tokens=None, fire=None) -> PriceWatcher:
    return PriceWatcher(engine.market, tokens or TokenRegistry(), index, queues, FixedClock(), fire or queues.fire,
                        random.Random(1), time.time)


async def set_price(engine, price: Decimal) -> None:
    """Move SOL/USDC on the shared market (both venues), as the sim API does, firing nothing."""
    await engine.market.modify(lambda m: m.set_price(SOL.mint, USDC.mint, price), [(SOL.mint, USDC.mint)])


def resting_sell(n: int, limit: Decimal) -> OrderRecord:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    return OrderRecord(
        id=f"00000000-0000-7000-8000-{n:012d}", client_id="c", kind="limit", side="sell", status=Status.WAITING,
        base_mint=SOL.mint, quote_mint=USDC.mint, input_mint=SOL.mint, output_mint=USDC.mint,
        amount_in=10**9, slippage_bps=50, created_at=now, updated_at=now, limit_price=limit,
        expires_at=now + timedelta(days=1),
    )


async def test_a_price_move_fires_only_the_ten_limit_orders_it_crosses_among_ten_thousand(engine):
    index = RedisRestingIndex(engine.redis, engine.settings.namespace)
    queues = CapturingQueues()
    watcher = watcher_on(engine, index, queues)
    await set_price(engine, Decimal(150))
    far = [resting_sell(n, Decimal(160) + Decimal(n) / 100) for n in range(9_990)]   # 160.00 … 259.89
    near = [resting_sell(10_000 + n, Decimal("155.0") + Decimal(n) / 10) for n in range(10)]  # 155.0 … 155.9
    for batch_start in range(0, len(far) + len(near), 500):
        await asyncio.gather(*(index.arm(o) for o in (far + near)[batch_start:batch_start + 500]))
    assert await index.count_limits(SOL.mint, USDC.mint, "sell") == 10_000

    assert await watcher.prices_changed() == 0  # at 150 nothing is crossed
    # Spot 160: after the 0.1–0.25 % fee a 1 SOL sell executes just under 160, so 155.x cross
    # and the orders at 160.00 and above do not.
    await set_price(engine, Decimal(160))
    assert await watcher.prices_changed() == 10
    assert {m.order_id for m in queues.sent} == {o.id for o in near}
    assert all(isinstance(m, TriggerFired) for m in queues.sent)
    # Claimed: a second watcher (or the next tick) does not hand them over again.
    assert await watcher.prices_changed() == 0
    assert await index.count_limits(SOL.mint, USDC.mint, "sell") == 9_990


async def test_two_watchers_hand_a_crossed_order_over_once(engine):
    index = RedisRestingIndex(engine.redis, engine.settings.namespace)
    queues = CapturingQueues()
    watchers = [watcher_on(engine, index, queues) for _ in range(2)]
    await set_price(engine, Decimal(150))
    await asyncio.gather(*(index.arm(resting_sell(n, Decimal(140))) for n in range(50)))
    fired = await asyncio.gather(*(w.prices_changed() for w in watchers))
    assert sum(fired) == 50
    assert len({m.order_id for m in queues.sent}) == len(queues.sent) == 50


async def waiting_limit_order(engine, key: str) -> str:
    request = LimitOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1",
                                limit_price="100", expires_at=3600)
    arm = await intake.handle(NewOrder(request, "client", key), engine.ctx)
    assert isinstance(arm, ArmRequest)
    await trigger.handle(arm, engine.ctx)
    assert (await engine.ctx.orders.get(arm.order_id)).status == Status.WAITING
    return arm.order_id


async def test_cancel_racing_a_trigger_exactly_one_wins(engine):
    outcomes = []
    for n in range(20):
        order_id = await waiting_limit_order(engine, f"race-{n}")
        fired, cancelled = await asyncio.gather(
            trigger.handle(TriggerFired(order_id, {"price": "150"}), engine.ctx),
            trigger.cancel(order_id, engine.ctx),
        )
        statuses = [e.status for e in await engine.ctx.orders.events(order_id)]
        assert (fired is not None) != (cancelled is not None), statuses
        assert statuses.count("triggered") + statuses.count("cancelled") == 1
        assert statuses[:2] == ["pending", "waiting"] and len(statuses) == 3
        outcomes.append(statuses[-1])
    assert set(outcomes) <= {"triggered", "cancelled"}


async def test_expired_order_cannot_trigger(engine):
    order_id = await waiting_limit_order(engine, "exp")
    order = await engine.ctx.orders.get(order_id)
    late = Status.EXPIRED
    await engine.ctx.record(order_id, late, {"expiresAt": "now"})
    await engine.ctx.resting.disarm(order)
    assert await trigger.handle(TriggerFired(order_id, {}), engine.ctx) is None
    assert [e.status for e in await engine.ctx.orders.events(order_id)] == ["pending", "waiting", "expired"]


async def test_random_launches_eventually_list_the_token_a_sniper_waits_for(engine):
    index = RedisRestingIndex(engine.redis, engine.settings.namespace)
    queues = CapturingQueues()
    tokens = TokenRegistry()
    watcher = watcher_on(engine, index, queues, tokens)
    awaited = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
    now = datetime(2026, 11, 25, tzinfo=UTC)
    sniper = OrderRecord(
        id="00000000-0000-7000-8000-000000000001", client_id="c", kind="sniper", side="buy", status=Status.WAITING,
        base_mint=awaited, quote_mint=SOL.mint, input_mint=SOL.mint, output_mint=awaited, amount_in=10**8,
        slippage_bps=500, created_at=now, updated_at=now, expires_at=now + timedelta(days=1), conditions={},
    )
    await index.arm(sniper)
    for _ in range(30):
        await watcher.launch_at_random()
        if queues.sent:
            break
    assert [type(m) for m in queues.sent] == [TriggerFired]
    assert queues.sent[0].order_id == sniper.id
    assert tokens.find(awaited) is not None and (await engine.market.load(awaited, SOL.mint)).has_pair(awaited, SOL.mint)


async def test_after_redis_loses_everything_waiting_orders_are_re_armed_and_still_fire(engine):
    from functions import reconcile

    order_id = await waiting_limit_order(engine, "flushed")
    assert await reconcile.rearm_if_lost(engine.ctx) == 1  # first round: the index was never marked built
    await forget_namespace(engine.redis, engine.settings.namespace)  # FLUSHALL, for this engine's keys
    queues = CapturingQueues()
    watcher = watcher_on(engine, engine.resting, queues)
    await set_price(engine, Decimal(150))
    assert await watcher.prices_changed() == 0  # the limit is gone from Redis: nothing can fire it
    assert await reconcile.rearm_if_lost(engine.ctx) == 1
    assert await reconcile.rearm_if_lost(engine.ctx) == 0  # once
    assert await watcher.prices_changed() == 1  # 150 ≥ the 100 limit
    assert [m.order_id for m in queues.sent] == [order_id]


async def test_a_price_move_counts_only_the_orders_that_fired_not_those_a_cancel_won(engine):
    """The count is what really fired: each claimed order goes through `trigger`, whose conditional
    waiting → triggered change loses to a cancel that came first."""
    queues = CapturingQueues()
    watcher = watcher_on(engine, engine.resting, queues, engine.ctx.tokens, functools.partial(fire_now, engine.ctx, queues))
    await set_price(engine, Decimal(90))
    order_ids = [await waiting_limit_order(engine, f"count-{n}") for n in range(12)]
    for order_id in order_ids[::2]:  # the cancel's change lands; the index entry is still there
        assert await engine.ctx.record(order_id, Status.CANCELLED, {"reason": "cancelled by client"}) is not None
    await set_price(engine, Decimal(150))
    fired = await watcher.prices_changed()
    statuses = [(await engine.ctx.orders.get(order_id)).status for order_id in order_ids]
    assert fired == statuses.count(Status.TRIGGERED) == 6
    assert {m.order_id for m in queues.sent} == set(order_ids[1::2])  # their quote requests, nothing else


async def test_a_launch_against_another_quote_asset_is_ignored_by_a_sniper_not_refused(engine):
    mint = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
    request = SniperOrderRequest(side="buy", base_asset=mint, quote_asset="USDC", amount="10", expires_at=600)
    arm = await intake.handle(NewOrder(request, "client", "sniper-usdc"), engine.ctx)
    await trigger.handle(arm, engine.ctx)
    queues = CapturingQueues()
    watcher = watcher_on(engine, engine.resting, queues, engine.ctx.tokens, functools.partial(fire_now, engine.ctx, queues))
    token = Token("NEW", mint, 6)
    on_sol = await watcher.launch(LaunchPlan("raydium", token, 10**12, 100 * 10**9), SOL)
    assert on_sol == {"fired": 0, "refused": 0} and queues.sent == []
    assert [e.status for e in await engine.ctx.orders.events(arm.order_id)] == ["pending", "waiting"]
    on_usdc = await watcher.launch(LaunchPlan("meteora", token, 10**12, 100_000 * 10**6), USDC)
    assert on_usdc == {"fired": 1, "refused": 0}
    assert (await engine.ctx.orders.get(arm.order_id)).status == Status.TRIGGERED


class ReadCountingIndex(RedisRestingIndex):
    """The Redis index, recording how many resting orders each read asked for."""

    def __init__(self, redis, namespace: str) -> None:
        super().__init__(redis, namespace)
        self.reads: list[int] = []

    async def resting(self, order_ids):
        self.reads.append(len(order_ids))
        return await super().resting(order_ids)


async def test_a_launch_answers_every_waiting_sniper_once_in_batches(engine):
    """200 sniper orders wait for one token, a third of them asking for more liquidity than the pool
    brings: one launch fires each of the others exactly once and refuses the third (shown in batches
    that double from one, each read just before it is shown: the first order fires before the
    others are read; each order's answer is its own)."""
    mint = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    armed = []
    for n in range(200):
        request = SniperOrderRequest(side="buy", base_asset=mint, quote_asset="SOL", amount="0.01",
                                     min_liquidity="1000" if n % 3 == 0 else "1", expires_at=600)
        arm = await intake.handle(NewOrder(request, "client", f"sniper-{n}"), engine.ctx)
        await trigger.handle(arm, engine.ctx)
        armed.append((n, arm.order_id))
    queues = CapturingQueues()
    index = ReadCountingIndex(engine.redis, engine.settings.namespace)
    watcher = watcher_on(engine, index, queues, engine.ctx.tokens, functools.partial(fire_now, engine.ctx, queues))
    outcome = await watcher.launch(LaunchPlan("raydium", Token("NEW", mint, 6), 10**12, 100 * 10**9), SOL)
    assert index.reads == [1, 2, 4, 8, 16, 32, 64, 64, 9]
    refused = {order_id for n, order_id in armed if n % 3 == 0}
    assert outcome == {"fired": 200 - len(refused), "refused": len(refused)}
    for _, order_id in armed:
        status = (await engine.ctx.orders.get(order_id)).status
        assert status == (Status.WAITING if order_id in refused else Status.TRIGGERED), order_id
    fired_next = [m.order_id for m in queues.sent if not isinstance(m, LaunchRefused)]
    assert sorted(fired_next) == sorted(order_id for _, order_id in armed if order_id not in refused)


async def test_claims_and_disarms_made_at_once_share_a_round_trip_and_claim_each_order_once(engine, monkeypatch):
    """A launch or a price move claims and disarms many orders at once: they travel in one
    pipeline per batch (counted as connections taken from the pool), and an order claimed twice
    in one batch is still claimed once."""
    index = RedisRestingIndex(engine.redis, engine.settings.namespace)
    orders = [resting_sell(n, Decimal(140)) for n in range(100)]
    await asyncio.gather(*(index.arm(o) for o in orders))
    pool = engine.redis.connection_pool
    taken = 0
    get_connection = pool.get_connection

    async def counted(*args, **kwargs):
        nonlocal taken
        taken += 1
        return await get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted)
    resting = [msgspec.structs.replace(RestingOrder.of(o), order_id=o.id) for o in orders]
    claimed = await asyncio.gather(*(index.claim_limit(r) for r in resting for _ in range(2)))
    assert [claimed[2 * n] + claimed[2 * n + 1] for n in range(100)] == [1] * 100
    assert taken <= 2, f"200 claims took {taken} round trips"
    taken = 0
    await asyncio.gather(*(index.disarm(o) for o in orders))
    assert taken <= 2, f"100 disarms took {taken} round trips"
    assert await index.count_limits(SOL.mint, USDC.mint, "sell") == 0
    assert await index.resting([o.id for o in orders]) == []
