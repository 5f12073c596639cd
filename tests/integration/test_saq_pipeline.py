"""The whole chain through SAQ on real Redis: queues per function, retries, giving up."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from types import SimpleNamespace
from typing import ClassVar

import msgspec

import pytest_asyncio

from functions.pipeline import Step
from local_runtime.bootstrap import start_engine
from shared.adapters.queues.saq import SaqQueues
from shared.domain.messages import QuoteRequest
from shared.domain.tokens import SOL, USDC
from functions.desk import OrderDesk
from shared.adapters.redis.admission import ClientLimits
from shared.adapters.postgres.api_keys import ApiClient
from shared.domain.states import TERMINAL_STATUSES, Status

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
    await engine.queues.queues["quote"].enqueue("quote", messages=["{not json"])
    order_id = await submit(desk)
    assert (await wait_terminal(engine, [order_id]))[order_id].status == Status.CONFIRMED


class FlakyQuote(Step):
    """A quote step whose handler fails the first delivery of order "b" only."""

    calls: ClassVar[Counter] = Counter()

    @property
    def handle(self):
        async def handle(message, ctx):
            FlakyQuote.calls[message.order_id] += 1
            if message.order_id == "b" and FlakyQuote.calls["b"] == 1:
                raise RuntimeError("venue hiccup")
            return None

        return handle


async def test_a_message_that_fails_in_a_batched_job_is_retried_alone(settings):
    queues = SaqQueues(settings.with_changes(job_retry_delay_ms=1), steps=["quote"])
    await queues.connect()
    try:
        name, run = queues.job_function(FlakyQuote("quote", QuoteRequest), SimpleNamespace(log=logging.getLogger()))
        batch = [msgspec.json.encode(QuoteRequest(order_id, SOL.mint, USDC.mint, 1, 50)).decode()
                 for order_id in ("a", "b", "c")]
        await run({"job": SimpleNamespace(attempts=1)}, messages=batch, attempt=1)
        assert FlakyQuote.calls == {"a": 1, "b": 1, "c": 1}
        # Only "b" comes back, as its second delivery, in a job of its own.
        queue = queues.queues["quote"]
        await asyncio.sleep(0.01)
        await queue.schedule()
        job = await queue.dequeue(timeout=2)
        assert job.kwargs["attempt"] == 2
        assert [msgspec.json.decode(m, type=QuoteRequest).order_id for m in job.kwargs["messages"]] == ["b"]
        await run({"job": SimpleNamespace(attempts=1)}, **job.kwargs)
        assert FlakyQuote.calls == {"a": 1, "b": 2, "c": 1}
    finally:
        await queues.disconnect()


async def test_messages_sent_together_travel_in_one_job(settings):
    queues = SaqQueues(settings, steps=["quote"])
    await queues.connect()
    try:
        await asyncio.gather(*(queues.send(QuoteRequest(str(i), SOL.mint, USDC.mint, 1, 50)) for i in range(30)))
        job = await queues.queues["quote"].dequeue(timeout=2)
        assert len(job.kwargs["messages"]) == 30 and job.kwargs["attempt"] == 1
    finally:
        await queues.disconnect()
