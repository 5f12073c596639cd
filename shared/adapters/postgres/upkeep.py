"""Keeping the hot table lean where the server does not.

Every status change leaves a dead row version in `orders` (no update there is HOT: the status
is in partial-index predicates), so without VACUUM the table and its indexes grow about
fivefold per minute of load and every statement on them slows: 60 s at full load went from
~970 to ~690 orders/s (loadtest/RESULTS.md). PostgreSQL's autovacuum does this job; where it
is off (some test and hand-configured servers, this project's CI machine among them) the
engine vacuums `orders` itself once its dead rows outnumber a tenth of the live ones.
"""

from __future__ import annotations

import asyncpg

HOT_TABLES = ("orders", "open_orders")
UPKEEP_INTERVAL_S = 5
MIN_DEAD_ROWS = 1_000
DEAD_RATIO = 0.1

_BLOATED = """
SELECT relname FROM pg_stat_user_tables
WHERE relname = ANY($1::text[]) AND n_dead_tup > greatest($2::bigint, n_live_tup * $3::float8)
  AND current_setting('autovacuum') = 'off'
"""


async def vacuum_bloated(pool: asyncpg.Pool) -> list[str]:
    """VACUUM each hot table with too many dead rows, if autovacuum is off; returns their names."""
    tables = [row["relname"] for row in await pool.fetch(_BLOATED, list(HOT_TABLES), MIN_DEAD_ROWS, DEAD_RATIO)]
    for table in tables:
        await pool.execute(f'VACUUM "{table}"')  # a name from HOT_TABLES: VACUUM takes no parameters
    return tables
