"""Keeping the hot tables lean and their statistics current where the server does not.

Every status change leaves a dead row version in `orders`. Most are HOT updates now (no index
on `orders` covers a column a change writes), pruned on their page as it fills; before that,
without VACUUM the table and its indexes grew about fivefold per minute of load and every
statement on them slowed: 60 s at full load went from ~970 to ~690 orders/s
(loadtest/RESULTS.md). PostgreSQL's autovacuum does this job; where it
is off (some test and hand-configured servers, this project's CI machine among them) the
engine vacuums `orders` itself once its dead rows outnumber a tenth of the live ones.

Autovacuum also analyzes. Without that, the plans each connection caches for its prepared
statements keep whatever the table looked like when they were made (an empty table, on a
fresh database) until the table is next vacuumed or analyzed: at 100 orders/s every status
change read the whole `orders` table, ~5 times per order (loadtest/RESULTS.md, issue 21).
Where autovacuum is off the engine analyzes a hot table each time its live rows have doubled
since the last count: plans follow the table's size (what their shape depends on) at log2(n)
analyses. Autovacuum's own rule (50 rows + a tenth changed, every status change counting) ran
one every 5 s under load and cost a tenth of the CPU per order at 1,000+ orders/s.
"""

from __future__ import annotations

import asyncpg

HOT_TABLES = ("orders", "open_orders")
UPKEEP_INTERVAL_S = 5
MIN_DEAD_ROWS = 1_000
DEAD_RATIO = 0.1
MIN_ANALYZED_ROWS = 50
"""A table is first analyzed once it holds this many live rows (autovacuum_analyze_threshold's default)."""
GROWTH = 2
"""…and again each time its live rows pass this multiple of the count its last analysis (or vacuum) left."""

_BLOATED = """
SELECT relname FROM pg_stat_user_tables
WHERE relname = ANY($1::text[]) AND n_dead_tup > greatest($2::bigint, n_live_tup * $3::float8)
  AND current_setting('autovacuum') = 'off'
"""


_GROWN = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relname = ANY($1::text[]) AND s.n_live_tup >= $2::bigint AND s.n_live_tup > greatest(c.reltuples, 0) * $3::float8
  AND current_setting('autovacuum') = 'off'
"""


async def upkeep(pool: asyncpg.Pool) -> list[str]:
    """One round: what autovacuum would do to the hot tables, where it is off. Returns the
    commands run ("VACUUM orders", "ANALYZE orders", …)."""
    done = [f"VACUUM {table}" for table in await vacuum_bloated(pool)]
    return done + [f"ANALYZE {table}" for table in await analyze_grown(pool)]


async def analyze_grown(pool: asyncpg.Pool) -> list[str]:
    """ANALYZE each hot table whose live rows reached MIN_ANALYZED_ROWS and GROWTH times the count
    PostgreSQL last took of them, if autovacuum is off; returns their names."""
    return await _run_on(pool, "ANALYZE", _GROWN, MIN_ANALYZED_ROWS, GROWTH)


async def vacuum_bloated(pool: asyncpg.Pool) -> list[str]:
    """VACUUM each hot table with too many dead rows, if autovacuum is off; returns their names."""
    return await _run_on(pool, "VACUUM", _BLOATED, MIN_DEAD_ROWS, DEAD_RATIO)


async def _run_on(pool: asyncpg.Pool, command: str, which: str, *limits: float) -> list[str]:
    """Run `command` on each hot table the query `which` names (given HOT_TABLES and `limits`)."""
    tables = [row["relname"] for row in await pool.fetch(which, list(HOT_TABLES), *limits)]
    for table in tables:
        await pool.execute(f'{command} "{table}"')  # a name from HOT_TABLES: the command takes no parameters
    return tables
