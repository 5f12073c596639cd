"""A lease in Redis: at most one holder at a time, which must renew it before it lapses; when
the holder dies, its lease lapses and another process takes it over.

`hold()` is the one call a contender makes every renewal interval: it renews the lease if this
holder has it, takes it if nobody has, and says whether this holder has it now. A holder that
fails to renew (Redis away, or the lease lapsed and someone else took it) learns it on the next
call and must stop acting as holder.
"""

from __future__ import annotations

from redis.asyncio import Redis

_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    def __init__(self, redis: Redis, key: str, holder: str, ttl_ms: int) -> None:
        self._redis = redis
        self._key = key
        self.holder = holder
        self._ttl_ms = ttl_ms
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Renew or take the lease; True if this holder has it for the next `ttl_ms`."""
        return bool(await self._hold(keys=[self._key], args=[self.holder, self._ttl_ms]))

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), if this holder has it."""
        await self._release(keys=[self._key], args=[self.holder])

    async def current_holder(self) -> str | None:
        holder = await self._redis.get(self._key)
        return holder.decode() if isinstance(holder, bytes) else holder
