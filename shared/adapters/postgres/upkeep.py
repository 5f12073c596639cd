"""Keeping the hot tables lean and their statistics current where the server does not.

Every status change leaves a dead row version in `orders`. Most are HOT updates now (no index
on `orders` covers a column a change writes), pruned on their page as it fills; before that,
without VACUUM the table and its indexes grew about fivefold per minute of load and every
statement on them slowed: 60 s at full load went from ~970 to ~690 orders/s
(loadtest/RESULTS.md). PostgreSQL's autovacuum does this job; where it
is off (some test and hand-configured servers, this project's CI machine among them) the
engine vacuums `orders` itself once its dead rows outnumber a tenth of the live ones.

Autovacuum also analyzes a table whose rows changed by more than 50 plus a tenth of its size.
Without that, the plans each connection caches for its prepared statements keep whatever the
table looked like when they were made (an empty table, on a fresh database) until the table
is next vacuumed or analyzed: at 100 orders/s every status change read the whole `orders`
table, ~5 times per order (loadtest/RESULTS.md, issue 21). Where autovacuum is off the engine
analyzes by the same rule; an ANALYZE also makes every cached plan on the table be made again.
"""

from __future__ import annotations

import asyncpg

HOT_TABLES = ("orders", "open_orders")
UPKEEP_INTERVAL_S = 5
MIN_DEAD_ROWS = 1_000
DEAD_RATIO = 0.1
MIN_CHANGED_ROWS = 50
CHANGED_RATIO = 0.1
"""PostgreSQL's own defaults (autovacuum_analyze_threshold, autovacuum_analyze_scale_factor)."""

_BLOATED = """
SELECT relname FROM pg_stat_user_tables
WHERE relname = ANY($1::text[]) AND n_dead_tup > greatest($2::bigint, n_live_tup * $3::float8)
  AND current_setting('autovacuum') = 'off'
"""


_CHANGED = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relname = ANY($1::text[]) AND s.n_mod_since_analyze > $2::bigint + greatest(c.reltuples, 0) * $3::float8
  AND current_setting('autovacuum') = 'off'
"""


async def upkeep(pool: asyncpg.Pool) -> list[str]:
    """One round: what autovacuum would do to the hot tables, where it is off. Returns the
    commands run ("VACUUM orders", "ANALYZE orders", …)."""
    done = [f"VACUUM {table}" for table in await vacuum_bloated(pool)]
    return done + [f"ANALYZE {table}" for table in await analyze_changed(pool)]


async def analyze_changed(pool: asyncpg.Pool) -> list[str]:
    """ANALYZE each hot table changed by more than MIN_CHANGED_ROWS plus CHANGED_RATIO of its
    rows since its last analysis, if autovacuum is off; returns their names."""
    tables = [row["relname"] for row in await pool.fetch(_CHANGED, list(HOT_TABLES), MIN_CHANGED_ROWS,
                                                         CHANGED_RATIO)]
    for table in tables:
        await pool.execute(f'ANALYZE "{table}"')  # a name from HOT_TABLES: ANALYZE takes no parameters
    return tables


async def vacuum_bloated(pool: asyncpg.Pool) -> list[str]:
    """VACUUM each hot table with too many dead rows, if autovacuum is off; returns their names."""
    tables = [row["relname"] for row in await pool.fetch(_BLOATED, list(HOT_TABLES), MIN_DEAD_ROWS, DEAD_RATIO)]
    for table in tables:
        await pool.execute(f'VACUUM "{table}"')  # a name from HOT_TABLES: VACUUM takes no parameters
    return tables
