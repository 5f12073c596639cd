"""Does the database slow down as it fills? Intake and replay latency on an empty database,
then with 1,000,000 orders (6,000,000 events) stored.

    .venv/bin/python -m loadtest.bench_growth [--orders 1000000] [--samples 2000]

Intake = the `intake` function storing a new order and its first event (the statement the
web process runs per order); replay = reading one stored order's events after seq 0, as a
reconnecting WebSocket does: of the order just taken in (a client reconnecting to a live
order) and of a random stored one (a cold read anywhere in the table). All on the real
PostgreSQL, one at a time, so the figures are statement latency, not throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

from functions import intake
from loadtest.bench import Services, percentile
from shared.domain.messages import MarketOrderRequest, NewOrder
from shared.settings import SimulationSettings
from functions.bootstrap import bootstrap

FILL = """
INSERT INTO orders (id, client_id, idempotency_key, kind, side, status, base_mint, quote_mint, input_mint,
                    output_mint, amount_in, slippage_bps, attempts, last_seq, created_at, updated_at)
SELECT md5(i::text)::uuid, 'filler' || (i % 1000), 'fill-' || i, 'market', 'sell', 'confirmed',
       'So11111111111111111111111111111111111111112', 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v',
       'So11111111111111111111111111111111111111112', 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v',
       1000000000, 50, 1, 6, now() - interval '1 day', now() - interval '1 day'
FROM generate_series($1::bigint, $2::bigint) AS i;
INSERT INTO order_events (order_id, seq, status, payload, created_at)
SELECT md5(i::text)::uuid, s, (ARRAY['pending','routing','routed','building','submitted','confirmed'])[s],
       '{"filler": true}'::jsonb, now() - interval '1 day'
FROM generate_series($1::bigint, $2::bigint) AS i, generate_series(1, 6) AS s;
"""


async def measure(world, samples: int, known: list[str]) -> dict[str, float]:
    request = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="0.5")
    timings: dict[str, list[float]] = {"intake": [], "replay recent": [], "replay random": []}

    async def timed(name: str, call):
        started = time.perf_counter()
        result = await call
        timings[name].append((time.perf_counter() - started) * 1000)
        return result

    for _ in range(samples):
        taken = await timed("intake", intake.handle(NewOrder(request, "bench", uuid.uuid4().hex), world.ctx))
        assert await timed("replay recent", world.ctx.orders.events(taken.order_id, 0))
        assert await timed("replay random", world.ctx.orders.events(random.choice(known), 0))
    figures = {}
    for name, values in timings.items():
        figures[f"{name} p50"], figures[f"{name} p99"] = statistics.median(values), percentile(values, 99)
    return figures


async def fill(pool, orders: int, first: int = 1) -> float:
    started = time.perf_counter()
    async with pool.acquire() as connection:
        for start in range(first, first + orders, 100_000):
            end = min(first + orders - 1, start + 99_999)
            for statement in FILL.strip().split(";\n"):
                await connection.execute(statement, start, end)
        await connection.execute("ANALYZE orders; ANALYZE order_events")
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    services = Services()
    url = await services.fresh_database()
    namespace = f"growth{uuid.uuid4().hex[:6]}"
    settings = services.settings.with_changes(database_url=url, namespace=namespace,
                                              sim=SimulationSettings(zero_delays=True))
    world = await bootstrap(settings)
    try:
        await fill(world.pool, 1_000)  # a few orders to replay from
        known = [str(r["id"]) for r in await world.pool.fetch("SELECT id FROM orders LIMIT 1000")]
        empty = await measure(world, args.samples, known)
        fill_s = await fill(world.pool, args.orders, first=1_001)
        rows = await world.pool.fetch("SELECT id FROM orders ORDER BY random() LIMIT 1000")
        full = await measure(world, args.samples, [str(r["id"]) for r in rows])
        size = await world.pool.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await world.close()
        await services.drop(url, namespace)
    print(f"filled {args.orders:,} orders ({6 * args.orders:,} events) in {fill_s:.0f} s; database {size}")
    print("| database | " + " | ".join(empty) + " |")
    print("| --- |" + " ---: |" * len(empty))
    for name, row in (("empty", empty), (f"{args.orders:,} orders", full)):
        print(f"| {name} | " + " | ".join(f"{value:.2f} ms" for value in row.values()) + " |")
    print("| full / empty | " + " | ".join(f"{full[k] / empty[k]:.2f}×" for k in empty) + " |")


if __name__ == "__main__":
    asyncio.run(main())
