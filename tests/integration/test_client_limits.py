"""Admission on the real Redis: orders submitted together share one script call and are
admitted in turn, each exactly as if it came alone."""

from __future__ import annotations

import asyncio
import uuid

import pytest_asyncio
from redis.asyncio import Redis

from shared.adapters.redis.connection import forget_namespace
from shared.adapters.redis.admission import RedisClientLimits, owner_key
from tests.conftest import REDIS_URL


@pytest_asyncio.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    namespace = f"t{uuid.uuid4().hex[:10]}"
    try:
        yield client, namespace
    finally:
        await forget_namespace(client, namespace)
        await client.aclose()


async def test_concurrent_orders_get_exactly_the_in_flight_slots_there_are(redis):
    client, namespace = redis
    limits = RedisClientLimits(client, namespace)
    orders = [f"o{n}" for n in range(40)]
    verdicts = await asyncio.gather(*(limits.admit("alice", 1000, 7, o) for o in orders))
    assert limits._admissions.batches < len(orders)  # they did share calls
    admitted = [o for o, v in zip(orders, verdicts, strict=True) if v.admitted]
    assert admitted == orders[:7]  # in arrival order
    assert {v.reason for v in verdicts if not v.admitted} == {"in_flight"}
    assert await limits.in_flight("alice") == 7
    assert await client.get(owner_key(namespace, "o0")) == b"alice"
    assert await client.get(owner_key(namespace, "o7")) is None  # a refused order owns no slot


async def test_the_rate_window_counts_each_order_of_a_batch_and_says_when_to_retry(redis):
    client, namespace = redis
    limits = RedisClientLimits(client, namespace)
    verdicts = await asyncio.gather(*(limits.admit("bob", 5, 1000, f"b{n}") for n in range(12)),
                                    *(limits.admit("carol", 5, 1000, f"c{n}") for n in range(3)))
    bob, carol = verdicts[:12], verdicts[12:]
    assert [v.admitted for v in bob] == [True] * 5 + [False] * 7
    assert all(v.reason == "rate" and 1 <= v.retry_after_s <= 60 for v in bob[5:])
    assert all(v.admitted for v in carol)  # one client's limit is not another's


async def test_one_at_a_time_admits_the_same_way(redis):
    client, namespace = redis
    limits = RedisClientLimits(client, namespace, max_batch=1)
    verdicts = await asyncio.gather(*(limits.admit("dave", 1000, 3, f"d{n}") for n in range(6)))
    assert sum(v.admitted for v in verdicts) == 3
    assert await limits.in_flight("dave") == 3
