"""Per-client admission in Redis, shared by every web process: orders per minute and orders
in flight (submitted, not yet finished or resting).

Admission is one Lua script (one round trip, atomic): it counts the request in the
client's one-minute window and reserves an in-flight slot for the id the order will have
(and records who owns it); the caller releases it if the order was refused. Orders
submitted together share one call of the script, which admits them in turn. When an order
finishes or starts resting, the publisher settles its slot (`SETTLE_LUA`). Slots older
than `STALE_AFTER_MS` are dropped, so an order whose settling was lost (Redis flushed, a
process killed) cannot hold a slot for ever.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from shared.adapters.batching import Coalescer
from shared.domain.clients import Admission

STALE_AFTER_MS = 10 * 60 * 1000
WINDOW_MS = 60_000

_ADMIT_MANY = """
local now, window, stale, owner_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local verdicts = {}
for i = 0, #KEYS / 3 - 1 do
  local rate, inflight, owner = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 5 + 4 * i
  local per_minute, max_in_flight = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local verdict, wait = 0, 0
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', stale)
  local used = redis.call('INCR', rate)
  if used == 1 then redis.call('PEXPIRE', rate, window) end
  if used > per_minute then
    verdict, wait = 1, redis.call('PTTL', rate)
  elseif redis.call('ZCARD', inflight) >= max_in_flight then
    redis.call('DECR', rate)
    verdict = 2
  else
    redis.call('ZADD', inflight, now, ARGV[a + 2])
    redis.call('SET', owner, ARGV[a + 3], 'PX', owner_ttl)
  end
  verdicts[2 * i + 1], verdicts[2 * i + 2] = verdict, wait
end
return verdicts
"""
"""Admits a batch of orders in arrival order, each exactly as if it came alone. KEYS: (rate
key, in-flight key, owner key) per order; ARGV: now, window, stale cutoff, owner TTL, then
(per minute, max in flight, order id, client id) per order."""

SETTLE_LUA = """
local function settle(owner_key, inflight_prefix, order_id)
  local client = redis.call('GET', owner_key)
  if client then
    redis.call('ZREM', inflight_prefix .. client, order_id)
    redis.call('DEL', owner_key)
  end
end
"""
"""A Lua function for other scripts (the publisher's): free the in-flight slot of `order_id`,
whose owner key names the client holding it."""


def inflight_prefix(namespace: str) -> str:
    return f"{namespace}:inflight:"


def owner_key(namespace: str, order_id: str) -> str:
    return f"{namespace}:inflight-owner:{order_id}"


class RedisClientLimits:
    """Admissions of concurrent orders share one script call (group commit, shared/batching.py)."""

    def __init__(self, redis: Redis, namespace: str, max_batch: int = 256) -> None:
        self._redis = redis
        self._ns = namespace
        self._admit_many = redis.register_script(_ADMIT_MANY)
        self._admissions = Coalescer(self._run_admissions, max_batch=max_batch, max_in_flight=2)

    async def admit(self, client_id: str, per_minute: int, max_in_flight: int, order_id: str) -> Admission:
        """Count the request and reserve an in-flight slot for `order_id` (settled when that
        order finishes or rests; `release` it if no such order is made)."""
        return await self._admissions.submit((client_id, per_minute, max_in_flight, order_id))

    async def _run_admissions(self, requests: list[tuple[str, int, int, str]]) -> list[Admission]:
        now = int(time.time() * 1000)
        keys: list[str] = []
        args: list[str | int] = [now, WINDOW_MS, now - STALE_AFTER_MS, STALE_AFTER_MS]
        for client_id, per_minute, max_in_flight, order_id in requests:
            keys += [f"{self._ns}:rate:{client_id}", inflight_prefix(self._ns) + client_id,
                     owner_key(self._ns, order_id)]
            args += [per_minute, max_in_flight, order_id, client_id]
        verdicts = await self._admit_many(keys=keys, args=args)
        return [_admission(int(verdict), int(wait_ms)) for verdict, wait_ms in zip(verdicts[::2], verdicts[1::2])]

    async def release(self, client_id: str, order_id: str) -> None:
        """Give back the slot reserved for an order that was refused or turned out to be a repeat."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(inflight_prefix(self._ns) + client_id, order_id)
            pipe.delete(owner_key(self._ns, order_id))
            await pipe.execute()

    async def in_flight(self, client_id: str) -> int:
        return await self._redis.zcard(inflight_prefix(self._ns) + client_id)


def _admission(verdict: int, wait_ms: int) -> Admission:
    if verdict == 0:
        return Admission(True)
    if verdict == 1:
        return Admission(False, "rate", max(1, -(-wait_ms // 1000)))
    return Admission(False, "in_flight", 1)
