"""The event publisher on the real Redis: hand-over without waiting, order kept, flush, failures."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest_asyncio
from redis.asyncio import Redis

from shared.adapters.redis.connection import forget_namespace
from shared.adapters.redis.admission import RedisClientLimits
from shared.domain.events import Event, decode_event
from shared.adapters.redis.publisher import PublisherSettlingSlots, event_channel
from shared.domain.states import Status
from tests.conftest import REDIS_URL

ORDER = "01a2378f-2796-7231-bc2b-c52858cd074d"


def event(seq: int, status: Status = Status.ROUTING, order_id: str = ORDER) -> Event:
    return Event(order_id, seq, status, "2026-12-02T12:00:00.000Z", {"n": seq})


@pytest_asyncio.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield client, namespace
    await forget_namespace(client, namespace)
    await client.aclose()


async def subscribed(client: Redis, namespace: str):
    """A subscription to the order's channel, confirmed by Redis (so nothing published after
    this returns can be missed)."""
    pubsub = client.pubsub()
    await pubsub.subscribe(event_channel(namespace, ORDER))
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    return pubsub


async def received(pubsub, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None, f"only {len(seqs)} of {count} events arrived"
        seqs.append(decode_event(message["data"]).seq)
    return seqs


async def test_events_leave_in_the_order_they_were_handed_over_across_many_batches(redis):
    client, namespace = redis
    publisher = PublisherSettlingSlots(client, namespace, max_batch=7)
    pubsub = await subscribed(client, namespace)
    for seq in range(1, 101):
        await publisher.publish(event(seq))
        if seq % 10 == 0:
            await asyncio.sleep(0)  # a sender is running while more are handed over
    await publisher.flush()
    assert await received(pubsub, 100) == list(range(1, 101))
    await pubsub.aclose()


class Slow(PublisherSettlingSlots):
    """Each pipeline takes a while (a busy Redis); records the seqs it has sent."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[int] = []

    async def _publish_many(self, events: list[Event]) -> None:
        await asyncio.sleep(0.05)
        await super()._publish_many(events)
        self.sent += [e.seq for e in events]


async def test_publish_hands_over_and_flush_waits_until_everything_is_sent(redis):
    client, namespace = redis
    publisher = Slow(client, namespace, max_batch=1)
    pubsub = await subscribed(client, namespace)
    await publisher.publish(event(1))
    await publisher.publish(event(2, Status.CONFIRMED))
    assert publisher.sent == []  # handed over: the caller did not wait for Redis
    await publisher.flush()
    assert publisher.sent == [1, 2]
    assert await received(pubsub, 2) == [1, 2]
    await publisher.flush()  # nothing left: returns at once
    await pubsub.aclose()


class FailingOnce(PublisherSettlingSlots):
    """The first pipeline fails (Redis went away for a moment); later ones go through."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failed = False

    async def _publish_many(self, events: list[Event]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("connection reset")
        await super()._publish_many(events)


async def test_a_failed_pipeline_is_dropped_and_logged_and_the_next_events_still_go(redis, caplog):
    client, namespace = redis
    publisher = FailingOnce(client, namespace)
    pubsub = await subscribed(client, namespace)
    with caplog.at_level(logging.WARNING, logger="engine.publisher"):
        await publisher.publish(event(1))
        await publisher.flush()
        await publisher.publish(event(2))
        await publisher.flush()
    assert await received(pubsub, 1) == [2]
    assert "1 events not published (ConnectionError: connection reset)" in caplog.text
    await pubsub.aclose()


async def test_ending_and_resting_events_free_their_orders_in_flight_slots_in_the_same_call(redis):
    client, namespace = redis
    limits = RedisClientLimits(client, namespace)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for order_id in ids:
        assert (await limits.admit("alice", 1000, 10, order_id)).admitted
    publisher = PublisherSettlingSlots(client, namespace)
    statuses = (Status.CONFIRMED, Status.ROUTING, Status.WAITING, Status.FAILED)
    for order_id, status in zip(ids, statuses, strict=True):
        await publisher.publish(event(2, status, order_id))
    await client.script_flush()  # Redis lost its script cache (a restart): the publisher loads it again
    await publisher.flush()
    assert await limits.in_flight("alice") == 1  # only the order still routing holds its slot
    assert await client.zrange(f"{namespace}:inflight:alice", 0, -1) == [ids[1].encode()]
