"""API Gateway's WebSocket connections in Redis: whose each connection is, which orders it follows,
and how far each order has been posted to it, with the short lock that keeps those posts in order.

Keys, under `{namespace}:ws:`:
  conn:{connection}            the id (SHA-256) of the key the connection authenticated with
  subs:{connection}            hash: order id → the last seq posted to the connection (its cursor)
  order:{order}                set: the connections following the order
  lock:{connection}:{order}    held by whoever is posting the order's events to the connection
  dirty:{connection}:{order}   set by a poster that found the lock held: the holder looks again

Posts for one (connection, order) run under its lock: read the cursor, post the events after it in
seq order, advance it; an event at or before the cursor is not posted again. A poster that finds the
lock held marks the pair dirty and leaves its events to the holder, which, before releasing, looks
again while the pair is dirty. Both steps are one script each, so no event is left behind: either
the mark comes before the holder's last look, or the lock is free for the poster to take.

Everything lapses with the connection: API Gateway closes a connection after two hours at most,
so its records expire then even if its $disconnect never comes (a live one's records are never
refreshed: it cannot outlive them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

CONNECTION_TTL_S = 2 * 60 * 60 + 60
"""API Gateway's longest connection (2 h), and a minute."""
LOCK_MS = 5_000
"""How long a poster may hold a (connection, order) without renewing: a poster that died lets go
after this. Posting an order's events takes milliseconds."""

_FOLLOW_LUA = """
local function follow(prefix, conn, order, cursor, ttl_s)
  local conn_ttl = redis.call('PTTL', prefix .. 'conn:' .. conn)
  if conn_ttl == -2 then return false end
  local subs = prefix .. 'subs:' .. conn
  redis.call('HSET', subs, order, cursor)
  if conn_ttl > 0 then redis.call('PEXPIRE', subs, conn_ttl) end
  local members = prefix .. 'order:' .. order
  redis.call('SADD', members, conn)
  redis.call('EXPIRE', members, ttl_s)
  return true
end
"""
"""Record that `conn` follows `order`, posted up to `cursor`; false if the connection is unknown."""

_WATCH = _FOLLOW_LUA + """
return follow(ARGV[1], ARGV[2], ARGV[3], 0, ARGV[4]) and 1 or 0
"""
"""ARGV: prefix, connection, order, ttl. No lock: the order does not exist yet."""

_CLAIM_FROM = _FOLLOW_LUA + """
local prefix, conn, order, after, token, lock_ms, ttl_s = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', prefix .. 'conn:' .. conn) == 0 then return -1 end
if not redis.call('SET', prefix .. 'lock:' .. conn .. ':' .. order, token, 'NX', 'PX', lock_ms) then return 0 end
follow(prefix, conn, order, after, ttl_s)
redis.call('DEL', prefix .. 'dirty:' .. conn .. ':' .. order)
return 1
"""
"""A subscription: take the lock, set the cursor to `after`. 1 taken, 0 held by a poster, -1 unknown connection."""

_CLAIM = """
local prefix, token, lock_ms = ARGV[1], ARGV[2], ARGV[3]
local claimed = {}
for i = 4, #ARGV do
  local order = ARGV[i]
  local members = prefix .. 'order:' .. order
  for _, conn in ipairs(redis.call('SMEMBERS', members)) do
    local cursor = redis.call('HGET', prefix .. 'subs:' .. conn, order)
    if not cursor then
      redis.call('SREM', members, conn)
    elseif redis.call('SET', prefix .. 'lock:' .. conn .. ':' .. order, token, 'NX', 'PX', lock_ms) then
      table.insert(claimed, order)
      table.insert(claimed, conn)
      table.insert(claimed, cursor)
    else
      redis.call('SET', prefix .. 'dirty:' .. conn .. ':' .. order, '1', 'PX', 2 * lock_ms)
    end
  end
end
return claimed
"""
"""ARGV: prefix, token, lock ms, then order ids. Takes the lock of every (connection, order) free,
marks the others dirty; returns (order, connection, cursor) for each lock taken."""

_FINISH = """
local prefix, conn, order, token, cursor, how, lock_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local lock = prefix .. 'lock:' .. conn .. ':' .. order
if redis.call('GET', lock) ~= token then return 0 end
local subs = prefix .. 'subs:' .. conn
local dirty = prefix .. 'dirty:' .. conn .. ':' .. order
if how == 'ended' or redis.call('HEXISTS', subs, order) == 0 then
  redis.call('HDEL', subs, order)
  redis.call('SREM', prefix .. 'order:' .. order, conn)
  redis.call('DEL', lock, dirty)
  return 0
end
redis.call('HSET', subs, order, cursor)
if how == 'posted' and redis.call('DEL', dirty) == 1 then
  redis.call('PEXPIRE', lock, lock_ms)
  return 1
end
redis.call('DEL', lock)
return 0
"""
"""ARGV: prefix, connection, order, token, cursor, how, lock ms. Returns 1 when the holder keeps
the lock to look again (the pair was marked dirty), 0 when it let go (or had lost it)."""

_FORGET = """
local prefix, conn = ARGV[1], ARGV[2]
local subs = prefix .. 'subs:' .. conn
for _, order in ipairs(redis.call('HKEYS', subs)) do
  redis.call('SREM', prefix .. 'order:' .. order, conn)
end
redis.call('DEL', subs, prefix .. 'conn:' .. conn)
"""

_UNWATCH = """
redis.call('HDEL', ARGV[1] .. 'subs:' .. ARGV[2], ARGV[3])
redis.call('SREM', ARGV[1] .. 'order:' .. ARGV[3], ARGV[2])
"""


class Finish(Enum):
    """How a holder ends a round of posts."""

    POSTED = "posted"
    """Everything it found is posted: look again if the pair was marked dirty, else let go."""
    FAILED = "failed"
    """A post failed: keep the cursor before it and let go (the next event, or a subscribe, resumes)."""
    ENDED = "ended"
    """The order's terminal event is posted: the subscription is over."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The lock of one (connection, order), taken: post the events after `cursor`."""

    connection_id: str
    order_id: str
    cursor: int


class SocketRegistry:
    def __init__(self, redis: Redis, namespace: str, lock_ms: int = LOCK_MS, ttl_s: int = CONNECTION_TTL_S) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:ws:"
        self.lock_ms = lock_ms
        self._ttl_s = ttl_s
        self._watch = redis.register_script(_WATCH)
        self._claim_from = redis.register_script(_CLAIM_FROM)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._forget = redis.register_script(_FORGET)
        self._unwatch = redis.register_script(_UNWATCH)

    async def connect(self, connection_id: str, key_id: str) -> None:
        await self._redis.set(f"{self._prefix}conn:{connection_id}", key_id, ex=self._ttl_s)

    async def key_of(self, connection_id: str) -> str | None:
        """The id of the key the connection authenticated with; None for a connection not (or no
        longer) known."""
        key_id = await self._redis.get(f"{self._prefix}conn:{connection_id}")
        return None if key_id is None else key_id.decode()

    async def forget(self, connection_id: str) -> None:
        """The connection and its subscriptions (it is closed)."""
        await self._forget(args=[self._prefix, connection_id])

    async def watch(self, connection_id: str, order_id: str) -> bool:
        """Follow, from seq 1, an order about to be made with this id; False if the connection is
        unknown."""
        return bool(await self._watch(args=[self._prefix, connection_id, order_id, self._ttl_s]))

    async def unwatch(self, connection_id: str, order_id: str) -> None:
        await self._unwatch(args=[self._prefix, connection_id, order_id])

    async def claim_from(self, connection_id: str, order_id: str, after: int, token: str) -> bool | None:
        """Subscribe: take the pair's lock and set its cursor to `after`. False while a poster holds
        the lock (try again shortly), None if the connection is unknown."""
        taken = await self._claim_from(args=[self._prefix, connection_id, order_id, after, token, self.lock_ms,
                                             self._ttl_s])
        return None if taken == -1 else bool(taken)

    async def claim(self, order_ids: list[str], token: str) -> list[Claim]:
        """For new events of these orders: the lock of each following connection that is free (the
        others are marked dirty, for their holders to look again)."""
        flat = await self._claim(args=[self._prefix, token, self.lock_ms, *order_ids])
        return [Claim(flat[i + 1].decode(), flat[i].decode(), int(flat[i + 2])) for i in range(0, len(flat), 3)]

    async def finish(self, claim: Claim, token: str, cursor: int, how: Finish) -> bool:
        """Store the cursor (the last seq posted) and let go of the lock; True if the pair was marked
        dirty meanwhile: the holder keeps the lock and looks for newer events."""
        again = await self._finish(args=[self._prefix, claim.connection_id, claim.order_id, token, cursor, how.value,
                                         self.lock_ms])
        return bool(again)
