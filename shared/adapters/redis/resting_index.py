"""Resting orders in Redis: sorted sets by limit price per (pair, side), a set per token
awaited by snipers, and a sorted set of expiries.

A price change reads only the orders whose limit the best spot price has crossed
(ZRANGEBYSCORE: O(log N + M)); scores are floats used as a coarse filter, the exact
check is on the Decimal limit. Removing a member (ZREM/SREM answering 1) is the claim
that hands an order to the pipeline once, however many watchers run.

Claims and disarms made at once (a launch firing its snipers, a price move its limit orders)
travel together, one pipeline per batch (group commit, shared/adapters/batching.py): a launch
of 1,000 snipers made 2,000 round trips for them, one claim and one disarm each.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
from redis.asyncio import Redis

from shared.adapters.batching import Coalescer
from shared.domain.orders import Kind, OrderRecord
from shared.domain.resting import RestingOrder

_SCORE_SLACK = 1e-9
"""Relative widening of the float range so rounding never hides a crossing order."""


_resting_decoder = msgspec.json.Decoder(RestingOrder)


def _texts(members) -> list[str]:
    """Members as Redis returns them (bytes, or str from a client that decodes) as text."""
    return [m.decode() if isinstance(m, bytes) else m for m in members]


def _millis(moment: datetime) -> int:
    """Whole milliseconds, rounded down (for "now")."""
    return int(moment.timestamp() * 1000)


def _millis_up(moment: datetime) -> int:
    """Whole milliseconds, rounded up (for an expiry: never claimed before it is due)."""
    return -(-round(moment.timestamp() * 1_000_000) // 1000)


class RedisRestingIndex:
    def __init__(self, redis: Redis, namespace: str, max_batch: int = 256) -> None:
        self._redis = redis
        self._ns = namespace
        self._claims = Coalescer(self._claim_many, max_batch=max_batch, max_in_flight=2)
        self._disarms = Coalescer(self._disarm_many, max_batch=max_batch, max_in_flight=2)

    def _limit_key(self, base_mint: str, quote_mint: str, side: str) -> str:
        return f"{self._ns}:limit:{base_mint}:{quote_mint}:{side}"

    def _snipe_key(self, mint: str) -> str:
        return f"{self._ns}:snipe:{mint}"

    def _details_key(self, order_id: str) -> str:
        return f"{self._ns}:resting:{order_id}"

    @property
    def _awaited_key(self) -> str:
        return f"{self._ns}:snipe-awaited"

    @property
    def _expiry_key(self) -> str:
        return f"{self._ns}:expiry"

    async def arm(self, order: OrderRecord) -> None:
        details = RestingOrder.of(order)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._details_key(order.id), msgspec.json.encode(details))
            if order.kind == Kind.LIMIT:
                pipe.zadd(self._limit_key(order.base_mint, order.quote_mint, order.side),
                          {order.id: float(order.limit_price)})
            elif order.kind == Kind.SNIPER:
                pipe.sadd(self._snipe_key(order.base_mint), order.id)
                pipe.sadd(self._awaited_key, order.base_mint)
            if order.expires_at is not None:
                pipe.zadd(self._expiry_key, {order.id: _millis_up(order.expires_at)})
            await pipe.execute()

    async def claim_rebuild(self) -> bool:
        # The marker is set before the rebuild reads the database: if Redis loses everything
        # again meanwhile, the marker goes too and the next round rebuilds once more.
        return bool(await self._redis.set(f"{self._ns}:trigger-index-built", "1", nx=True))

    async def disarm(self, order: OrderRecord) -> None:
        await self._disarms.submit(order)

    async def _disarm_many(self, orders: list[OrderRecord]) -> list[None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for order in orders:
                pipe.zrem(self._limit_key(order.base_mint, order.quote_mint, order.side), order.id)
                pipe.srem(self._snipe_key(order.base_mint), order.id)
                pipe.zrem(self._expiry_key, order.id)
                pipe.delete(self._details_key(order.id))
            await pipe.execute()
        return [None] * len(orders)

    async def _claim_many(self, claims: list[tuple[str, str, str]]) -> list[bool]:
        """Each claim is (command, key, member): SREM or ZREM of the member; True where this call
        removed it (a member claimed twice in one batch is removed by the first claim only)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for command, key, member in claims:
                if command == "srem":
                    pipe.srem(key, member)
                else:
                    pipe.zrem(key, member)
            return [removed == 1 for removed in await pipe.execute()]

    async def resting(self, order_ids: list[bytes | str]) -> list[RestingOrder]:
        if not order_ids:
            return []
        ids = _texts(order_ids)
        raw = await self._redis.mget([self._details_key(i) for i in ids])
        found = []
        for order_id, blob in zip(ids, raw, strict=True):
            if blob is None:
                continue
            found.append(msgspec.structs.replace(_resting_decoder.decode(blob), order_id=order_id))
        return found

    async def limit_candidates(
        self, base_mint: str, quote_mint: str, side: str, best_price: Decimal, limit: int = 1_000
    ) -> list[RestingOrder]:
        """Orders whose limit the best spot price has reached: sells with limit ≤ price,
        buys with limit ≥ price. A superset of those that fire (size and fees can still stop them)."""
        key = self._limit_key(base_mint, quote_mint, side)
        price = float(best_price)
        if side == "sell":
            ids = await self._redis.zrangebyscore(key, "-inf", price * (1 + _SCORE_SLACK), start=0, num=limit)
        else:
            ids = await self._redis.zrangebyscore(key, price * (1 - _SCORE_SLACK), "+inf", start=0, num=limit)
        return await self.resting(ids)

    async def claim_limit(self, order: RestingOrder) -> bool:
        return await self._claims.submit(("zrem", self._limit_key(order.base_mint, order.quote_mint, order.side),
                                          order.order_id))

    async def sniper_ids(self, mint: str) -> list[str]:
        return _texts(await self._redis.smembers(self._snipe_key(mint)))

    async def awaited_mints(self) -> list[str]:
        """Mints some sniper order has waited for (a hint: some may have launched since)."""
        return _texts(await self._redis.smembers(self._awaited_key))

    async def claim_sniper(self, order: RestingOrder) -> bool:
        return await self._claims.submit(("srem", self._snipe_key(order.base_mint), order.order_id))

    async def due_expiries(self, now: datetime, limit: int = 500) -> list[str]:
        return _texts(await self._redis.zrangebyscore(self._expiry_key, "-inf", _millis(now), start=0, num=limit))

    async def claim_expiry(self, order_id: str) -> bool:
        return await self._claims.submit(("zrem", self._expiry_key, order_id))

    async def count_limits(self, base_mint: str, quote_mint: str, side: str) -> int:
        return await self._redis.zcard(self._limit_key(base_mint, quote_mint, side))
