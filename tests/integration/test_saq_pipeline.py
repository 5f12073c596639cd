"""The whole chain through SAQ on real Redis: queues per function, retries, giving up."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from types import SimpleNamespace

import msgspec

import pytest_asyncio

from saq.job import Status as JobStatus

from functions.bootstrap import bootstrap
from functions.pipeline import message_key, step_for
from shared.adapters.queues.saq import SaqQueues
from shared.domain.messages import QuoteRequest
from shared.domain.tokens import SOL, USDC
from functions.desk import OrderDesk
from shared.domain.clients import ApiClient
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
    return engine.desk


async def submit(desk: OrderDesk) -> str:
    return (await desk.submit(ORDER, CLIENT)).order_id


@pytest_asyncio.fixture
async def running(settings):
    engine = await bootstrap(settings)
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
    engine = await bootstrap(broken)
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


async def test_a_message_to_deliver_again_in_a_batched_job_is_sent_again_alone(settings):
    """The delivery loop says per message whether to deliver it again; the SAQ adapter sends only
    those again, each in a job of its own with its next attempt number."""
    queues = SaqQueues(settings.with_changes(job_retry_delay_ms=1), step_for, message_key, ["quote"])
    calls: Counter = Counter()

    async def deliver(step: str, bodies: list[str], attempt: int) -> list[bool]:
        ids = [msgspec.json.decode(body, type=QuoteRequest).order_id for body in bodies]
        calls.update(ids)
        return [order_id == "b" and calls["b"] == 1 for order_id in ids]  # "b" fails its first delivery

    await queues.connect()
    try:
        [worker] = queues.workers(["quote"], deliver)
        run = worker.functions["quote"]
        batch = [msgspec.json.encode(QuoteRequest(order_id, SOL.mint, USDC.mint, 1, 50)).decode()
                 for order_id in ("a", "b", "c")]
        await run({"job": SimpleNamespace(attempts=1)}, messages=batch, attempt=1)
        assert calls == {"a": 1, "b": 1, "c": 1}
        queue = queues.queues["quote"]
        await asyncio.sleep(0.01)
        await queue.schedule()
        job = await queue.dequeue(timeout=2)
        assert job.kwargs["attempt"] == 2
        assert [msgspec.json.decode(m, type=QuoteRequest).order_id for m in job.kwargs["messages"]] == ["b"]
        await run({"job": SimpleNamespace(attempts=1)}, **job.kwargs)
        assert calls == {"a": 1, "b": 2, "c": 1}
    finally:
        await queues.disconnect()


async def test_messages_sent_together_travel_in_one_job(settings):
    queues = SaqQueues(settings, step_for, message_key, ["quote"])
    await queues.connect()
    try:
        await asyncio.gather(*(queues.send(QuoteRequest(str(i), SOL.mint, USDC.mint, 1, 50)) for i in range(30)))
        job = await queues.queues["quote"].dequeue(timeout=2)
        assert len(job.kwargs["messages"]) == 30 and job.kwargs["attempt"] == 1
    finally:
        await queues.disconnect()


async def start_next(queue):
    """The next job of `queue`, dequeued and marked active as a worker would."""
    job = await queue.dequeue(timeout=2)
    job.attempts += 1
    await job.update(status=JobStatus.ACTIVE)
    await queue._marked(job)
    return job


async def active_job(queue, order_id: str):
    """A job for `order_id`'s message, enqueued, then dequeued and marked active."""
    await queue.enqueue("quote", retries=3, meta={"orders": [order_id]}, messages=[order_id])
    return await start_next(queue)


async def test_a_job_whose_process_stopped_beating_is_delivered_again_and_a_beating_one_is_left_alone(settings):
    queues = SaqQueues(settings.with_changes(job_heartbeat_s=1, job_retry_delay_ms=1), step_for, message_key,
                       ["quote"])
    queue = queues.queues["quote"]
    await queues.connect()
    try:
        dead, alive = await active_job(queue, "dead"), await active_job(queue, "alive")
        queue.running.pop(dead.id)  # its process is gone: nothing renews its heartbeat
        await asyncio.sleep(1.2)
        await queue.redis.hset(queue.beats, f"{alive.id}#1", int(time.time() * 1000))  # what _beat writes
        assert await queue.sweep() == [dead.id]
        assert (await queue.job(dead.key)).status == JobStatus.QUEUED  # delivered again
        assert await queues.in_hand(["dead"]) == {"dead"}  # its order's message is queued again
        assert (await queue.job(alive.key)).status == JobStatus.ACTIVE
        assert await queue.redis.lrange(queue._active, 0, -1) == [alive.id.encode()]
        assert await queue.sweep() == []  # the lock: one sweep a second, whichever process
    finally:
        await queues.disconnect()


async def test_a_dequeued_job_not_yet_marked_active_is_swept_only_once_silent_for_a_heartbeat(settings):
    queues = SaqQueues(settings.with_changes(job_heartbeat_s=1), step_for, message_key, ["quote"])
    queue = queues.queues["quote"]
    await queues.connect()
    try:
        await queue.enqueue("quote", messages=["x"])
        await asyncio.sleep(1.2)  # queued for longer than a heartbeat
        job = await queue.dequeue(timeout=2)  # and its worker died before marking it active
        assert await queue.sweep() == []  # first seen without a heartbeat: not yet
        await asyncio.sleep(1.1)
        assert await queue.sweep() == [job.id]
    finally:
        await queues.disconnect()


async def test_heartbeats_renew_running_jobs_and_their_orders_leases(settings):
    """A queued message's order is in hand for its step's deadline; while its job runs, the
    heartbeat keeps it in hand; once the queues lose it (a flushed Redis), it is not."""
    queues = SaqQueues(settings.with_changes(job_heartbeat_s=1), step_for, message_key, ["quote"])
    queue = queues.queues["quote"]
    await queues.connect()
    try:
        await queues.send(QuoteRequest("queued", SOL.mint, USDC.mint, 1, 50))
        assert await queues.in_hand(["queued", "never"]) == {"queued"}
        until = await queue.redis.zscore(queues.in_hand_key, "queued")
        assert until > (time.time() + settings.step_deadline_s("quote") - 5) * 1000

        queues.workers(["quote"], lambda *_: None)  # starts this process's heartbeats
        job = await start_next(queue)  # the queued message now runs
        await asyncio.sleep(0.6)
        beat = await queue.redis.hget(queue.beats, f"{job.id}#1")
        assert time.time() * 1000 - int(beat) < 500
        assert 0 < await queue.redis.zscore(queues.in_hand_key, "queued") - time.time() * 1000 <= 2_000

        await queue.finish(job, JobStatus.COMPLETE)
        await asyncio.sleep(0.6)
        assert await queue.redis.hget(queue.beats, f"{job.id}#1") is None  # an ended job's heartbeat goes

        await queue.redis.delete(queues.in_hand_key)  # Redis lost it
        assert await queues.in_hand(["queued"]) == set()
    finally:
        await queues.disconnect()
