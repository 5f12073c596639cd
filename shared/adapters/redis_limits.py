"""Per-client admission in Redis, shared by every web process: orders per minute and orders
in flight (submitted, not yet finished or resting).

Admission is one Lua script (one round trip, atomic): it counts the request in the
client's one-minute window and reserves an in-flight slot for the id the order will have
(and records who owns it); the caller releases it if the order was refused. When an order
finishes or starts resting, the publisher settles its slot (`SETTLE_SCRIPT`). Slots older
than `STALE_AFTER_MS` are dropped, so an order whose settling was lost (Redis flushed, a
process killed) cannot hold a slot for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

STALE_AFTER_MS = 10 * 60 * 1000
WINDOW_MS = 60_000

_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if used > tonumber(ARGV[3]) then
  return {1, redis.call('PTTL', KEYS[1])}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[1])
  return {2, 0}
end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[8])
return {0, 0}
"""

SETTLE_SCRIPT = """
local client = redis.call('GET', KEYS[1])
if client then
  redis.call('ZREM', ARGV[1] .. client, ARGV[2])
  redis.call('DEL', KEYS[1])
end
"""
"""KEYS[1] = the order's owner key; ARGV = (in-flight key prefix, order id)."""


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    reason: str | None = None
    """"rate" (orders per minute) or "in_flight"."""
    retry_after_s: int = 0


def inflight_prefix(namespace: str) -> str:
    return f"{namespace}:inflight:"


def owner_key(namespace: str, order_id: str) -> str:
    return f"{namespace}:inflight-owner:{order_id}"


class ClientLimits:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, client_id: str, per_minute: int, max_in_flight: int, order_id: str) -> Admission:
        """Count the request and reserve an in-flight slot for `order_id` (settled when that
        order finishes or rests; `release` it if no such order is made)."""
        now = int(time.time() * 1000)
        verdict, wait_ms = await self._admit(
            keys=[f"{self._ns}:rate:{client_id}", inflight_prefix(self._ns) + client_id,
                  owner_key(self._ns, order_id)],
            args=[now, WINDOW_MS, per_minute, max_in_flight, now - STALE_AFTER_MS, order_id, client_id,
                  STALE_AFTER_MS],
        )
        if verdict == 0:
            return Admission(True)
        if verdict == 1:
            return Admission(False, "rate", max(1, -(-int(wait_ms) // 1000)))
        return Admission(False, "in_flight", 1)

    async def release(self, client_id: str, order_id: str) -> None:
        """Give back the slot reserved for an order that was refused or turned out to be a repeat."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(inflight_prefix(self._ns) + client_id, order_id)
            pipe.delete(owner_key(self._ns, order_id))
            await pipe.execute()

    async def in_flight(self, client_id: str) -> int:
        return await self._redis.zcard(inflight_prefix(self._ns) + client_id)
