"""Table upkeep on the real PostgreSQL: dead row versions left by status changes are vacuumed
away, and a growing table analyzed, when the server's autovacuum is off, and left to autovacuum
when it is on."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.adapters.postgres import upkeep


async def counted(pool: asyncpg.Pool, column: str) -> int:
    """`orders`' n_dead_tup or n_live_tup in pg_stat_user_tables."""
    return await pool.fetchval(f"SELECT {column} FROM pg_stat_user_tables WHERE relname = 'orders'")


async def counted_at_least(pool: asyncpg.Pool, column: str, at_least: int) -> None:
    for _ in range(50):  # the statistics reach pg_stat_user_tables shortly after the commits
        if await counted(pool, column) >= at_least:
            return
        await asyncio.sleep(0.1)


async def autovacuum_off(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT current_setting('autovacuum') = 'off'")


async def insert_orders(pool: asyncpg.Pool, count: int) -> None:
    await pool.execute("""
        INSERT INTO orders (id, client_id, kind, side, status, base_mint, quote_mint, input_mint, output_mint,
                            amount_in, slippage_bps, attempts, last_seq, created_at, updated_at)
        SELECT gen_random_uuid(), 'c', 'market', 'sell', 'pending', 'b', 'q', 'b', 'q', 1, 50, 0, 1, now(), now()
        FROM generate_series(1, $1::int)""", count)


async def test_a_bloated_orders_table_is_vacuumed_only_when_autovacuum_is_off(database, monkeypatch):
    monkeypatch.setattr(upkeep, "MIN_DEAD_ROWS", 10)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        assert await upkeep.vacuum_bloated(pool) == []  # an empty table is not bloated
        await insert_orders(pool, 50)
        for status in ("routing", "routed", "building"):  # each change leaves a dead version per order
            await pool.execute("UPDATE orders SET status = $1, updated_at = now()", status)
        await counted_at_least(pool, "n_dead_tup", 100)
        off = await autovacuum_off(pool)
        vacuumed = await upkeep.vacuum_bloated(pool)
        if off:
            assert vacuumed == ["orders"]
            assert await counted(pool, "n_dead_tup") == 0
        else:
            assert vacuumed == []
    finally:
        await pool.close()


async def test_a_growing_table_is_analyzed_each_time_it_doubles_only_when_autovacuum_is_off(database):
    """Without analyses the plans connections cache keep an empty table's shape (a full read of
    `orders` per status change); one per doubling keeps them in step at little cost."""
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        await insert_orders(pool, 40)
        await counted_at_least(pool, "n_live_tup", 40)
        assert await upkeep.analyze_grown(pool) == []  # too small to matter yet
        await insert_orders(pool, 160)
        await counted_at_least(pool, "n_live_tup", 200)
        if not await autovacuum_off(pool):
            assert await upkeep.upkeep(pool) == []
            return
        assert await upkeep.upkeep(pool) == ["ANALYZE orders"]
        assert await pool.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'orders'") == 200
        await insert_orders(pool, 150)
        await counted_at_least(pool, "n_live_tup", 350)
        assert await upkeep.analyze_grown(pool) == []  # 350 rows: not yet twice 200
        await insert_orders(pool, 100)
        await counted_at_least(pool, "n_live_tup", 450)
        assert await upkeep.analyze_grown(pool) == ["orders"]
    finally:
        await pool.close()
