"""The whole chain through SAQ on real Redis: queues per function, retries, giving up."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest_asyncio

from local_runtime.bootstrap import start_engine
from shared.submission import OrderDesk
from shared.adapters.redis_limits import ClientLimits
from shared.db.api_keys import ApiClient
from shared.states import TERMINAL_STATUSES, Status

CLIENT = ApiClient("c", orders_per_minute=10_000, max_in_flight=10_000)

ORDER = b'{"type":"market","side":"sell","baseAsset":"SOL","quoteAsset":"USDC","amount":"1.25"}'


async def wait_terminal(engine, order_ids, seconds: float = 20.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        orders = {i: await engine.ctx.orders.get(i) for i in order_ids}
        if all(o.status in TERMINAL_STATUSES for o in orders.values()):
            return orders
        assert asyncio.get_running_loop().time() < deadline, {i: o.status for i, o in orders.items()}
        await asyncio.sleep(0.05)


def desk_for(engine) -> OrderDesk:
    return OrderDesk(engine.ctx, engine.queues, ClientLimits(engine.redis, engine.settings.namespace))


async def submit(desk: OrderDesk) -> str:
    return (await desk.submit(ORDER, CLIENT)).order_id


@pytest_asyncio.fixture
async def running(settings):
    engine = await start_engine(settings)
    await engine.run_workers(["quote", "route", "execute"])
    try:
        yield engine, desk_for(engine)
    finally:
        await engine.close()


async def test_orders_flow_through_the_four_queues_to_confirmed(running):
    engine, desk = running
    order_ids = await asyncio.gather(*(submit(desk) for _ in range(20)))
    orders = await wait_terminal(engine, order_ids)
    assert {o.status for o in orders.values()} == {Status.CONFIRMED}
    for order_id in order_ids:
        seqs = [e.seq for e in await engine.ctx.orders.events(order_id)]
        assert seqs == list(range(1, 7))
    landed = await engine.pool.fetchval("SELECT count(*) FROM chain_transactions")
    assert landed == 20


async def test_a_step_failing_every_attempt_ends_failed_after_three_attempts(settings):
    broken = dataclasses.replace(settings, sim=dataclasses.replace(settings.sim, quote_failure_permille=1000))
    engine = await start_engine(broken)
    await engine.run_workers(["quote", "route", "execute"])
    try:
        order_id = await submit(desk_for(engine))
        order = (await wait_terminal(engine, [order_id]))[order_id]
    finally:
        await engine.close()
    assert order.status == Status.FAILED
    assert order.attempts == 3
    assert order.failure_reason.startswith("NoQuotes: no venue returned a quote")


async def test_an_undecodable_job_does_not_stop_other_orders(running):
    engine, desk = running
    await engine.queues.queues["quote"].enqueue("quote", message="{not json")
    order_id = await submit(desk)
    assert (await wait_terminal(engine, [order_id]))[order_id].status == Status.CONFIRMED
