"""The chaos command, small: 100 orders while a worker is SIGKILLed, Redis is flushed and the
web process is killed and restarted; every acknowledged order ends once, with all its events.
And the flush it makes never hits a Redis database holding anyone else's keys."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from loadtest.chaos_monkey import CHAOS_KEY, UnsafeFlush, passed, refuse_foreign_keys, run_chaos, table
from tests.conftest import REDIS_URL


async def test_one_hundred_orders_survive_a_kill_a_flush_and_a_web_restart():
    report = await run_chaos(orders=100, workers=2, rate=20, kills=1, flush=True, web_restart=True, redis_db=12,
                             drain_s=60)
    chaos = report["chaos"]
    assert (chaos.kills, chaos.flushes, chaos.web_restarts) == (1, 1, 1)
    assert report["acknowledged"] == report["stored_total"] == 100  # nothing lost, no retry made a second order
    assert report["stuck"] == [] and report["twice"] == [] and report["missing"] == [], table(report)
    assert report["statuses"]["confirmed"] == 100, table(report)
    assert passed(report)


async def test_chaos_refuses_a_redis_database_holding_keys_it_did_not_make():
    """It would FLUSHDB that database: with anyone else's key in it, it refuses before starting
    anything (no database made, nothing flushed)."""
    foreign = f"not-an-engine-{uuid.uuid4().hex}"
    redis = Redis.from_url(urlunsplit(urlsplit(REDIS_URL)._replace(path="/14")))
    await redis.set(foreign, "keep me", ex=60)
    try:
        with pytest.raises(UnsafeFlush, match="Redis database 14 holds keys no chaos run made"):
            await run_chaos(orders=1, redis_db=14)
        assert await redis.get(foreign) == b"keep me"
    finally:
        await redis.delete(foreign)
        await redis.aclose()


def test_the_keys_of_chaos_runs_are_the_only_ones_it_may_flush():
    ours = [b"chaos1a2b3c4d:in-hand", b"saq:chaos1a2b3c4d:quote:incomplete", b"saq:job:chaos1a2b3c4d:quote:x"]
    others = [b"dex:in-hand", b"saq:dex:quote:incomplete", b"chaosy:x", b"mychaos1a2b3c4d:x", b"session:1"]
    assert all(CHAOS_KEY.match(key) for key in ours)
    assert not any(CHAOS_KEY.match(key) for key in others)


async def test_a_key_about_to_expire_is_no_reason_to_refuse():
    """SAQ's abort markers (`saq:abort:<job>`, not namespaced, 5 s) outlive a chaos run by seconds: the
    next run must not refuse for them; a key that stays does make it refuse."""
    redis = Redis.from_url(urlunsplit(urlsplit(REDIS_URL)._replace(path="/15")))
    transient, lasting = f"saq:abort:{uuid.uuid4()}", f"not-an-engine-{uuid.uuid4().hex}"
    try:
        await redis.set(transient, "swept", px=5_000)
        await refuse_foreign_keys(redis, 15)
        await redis.set(lasting, "keep me", ex=60)
        with pytest.raises(UnsafeFlush):
            await refuse_foreign_keys(redis, 15)
    finally:
        await redis.delete(transient, lasting)
        await redis.aclose()
