"""How long one price change takes to evaluate with many open limit orders.

Arms N resting SOL/USDC sell orders in the Redis trigger index (limits spread far above
the market, plus 10 just below the next price), then times the watcher's evaluation of
a price move that crosses exactly those 10. Prints a table.

    .venv/bin/python -m loadtest.bench_triggers --orders 100000 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis

from functions.market_driver import PriceWatcher
from shared.adapters.redis.resting_index import RedisRestingIndex
from shared.domain.orders import OrderRecord
from shared.settings import load_settings
from shared.domain.states import Status
from shared.domain.tokens import SOL, USDC, TokenRegistry
from shared.adapters.sim.memory_store import MemoryMarketStore
from shared.adapters.redis.connection import forget_namespace

ROUNDS = 20


class Discard:
    """The queues and the firing: this measures the index and the price checks, not the steps."""

    async def send(self, message) -> None:
        pass

    async def fire(self, message) -> bool:
        return True


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def order(n: int, limit: Decimal) -> OrderRecord:
    now = datetime.now(UTC)
    return OrderRecord(
        id=str(uuid.UUID(int=n)), client_id="bench", kind="limit", side="sell", status=Status.WAITING,
        base_mint=SOL.mint, quote_mint=USDC.mint, input_mint=SOL.mint, output_mint=USDC.mint, amount_in=10**9,
        slippage_bps=50, created_at=now, updated_at=now, limit_price=limit, expires_at=now + timedelta(days=1),
    )


async def bench(redis: Redis, count: int) -> dict[str, float]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    index = RedisRestingIndex(redis, namespace)
    store = MemoryMarketStore()  # this measures the index and the price checks, not the shared store
    market = store.market
    discard = Discard()
    watcher = PriceWatcher(store, TokenRegistry(), index, discard, Clock(), discard.fire, random.Random(1), time.time)
    market.set_price(SOL.mint, USDC.mint, Decimal(150))
    started = time.perf_counter()
    far = (order(n, Decimal(160) + Decimal(n % 100_000) / 1000) for n in range(count - 10))
    batch = []
    for resting in far:
        batch.append(index.arm(resting))
        if len(batch) == 2_000:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)
    load_s = time.perf_counter() - started
    near = [order(count + n, Decimal("155.0") + Decimal(n) / 10) for n in range(10)]
    timings, quiet = [], []
    for _ in range(ROUNDS):
        await asyncio.gather(*(index.arm(o) for o in near))
        market.set_price(SOL.mint, USDC.mint, Decimal(150))
        t0 = time.perf_counter()
        assert await watcher.prices_changed() == 0
        quiet.append(time.perf_counter() - t0)
        market.set_price(SOL.mint, USDC.mint, Decimal(160))
        t0 = time.perf_counter()
        fired = await watcher.prices_changed()
        timings.append(time.perf_counter() - t0)
        assert fired == 10, fired
    memory = (await redis.info("memory"))["used_memory"]
    await forget_namespace(redis, namespace)
    return {"orders": count, "load_s": load_s, "quiet_ms": statistics.median(quiet) * 1000,
            "tick_ms": statistics.median(timings) * 1000, "tick_p95_ms": sorted(timings)[int(ROUNDS * 0.95) - 1] * 1000,
            "redis_mb": memory / 2**20}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    redis = Redis.from_url(load_settings().redis_url)
    rows = [await bench(redis, n) for n in args.orders]
    await redis.aclose()
    print("| open limit orders | tick, 0 crossed (median) | tick, 10 crossed (median) | p95 | load time | Redis used |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['orders']:,} | {r['quiet_ms']:.2f} ms | {r['tick_ms']:.2f} ms | {r['tick_p95_ms']:.2f} ms"
              f" | {r['load_s']:.0f} s | {r['redis_mb']:.0f} MiB |")


if __name__ == "__main__":
    asyncio.run(main())
