"""The engine's PostgreSQL pool (shared/adapters/postgres/connection.py) on the real server:
a new connection already knows every array type the engine's statements take, so no statement
pays asyncpg's type introspection on the critical path."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import asyncpg

from shared.adapters.postgres import connection as pg

ADAPTERS = Path(pg.__file__).parent


def _introspections(monkeypatch) -> list:
    """Every type introspection asyncpg runs from now on (its catalog query for an unknown type)."""
    seen: list = []
    introspect = asyncpg.connection.Connection._introspect_types

    async def counted(self, *args, **kwargs):
        seen.append(args[0])
        return await introspect(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "_introspect_types", counted)
    return seen


async def test_every_connection_of_the_pool_knows_the_engines_array_types_before_its_first_statement(
        database: str, monkeypatch) -> None:
    pool = await pg.connect_postgres(database, 1, 3)
    seen = _introspections(monkeypatch)
    connections = [await pool.acquire() for _ in range(3)]  # two of them new, opened now
    try:
        introspected_on_open = len(seen)
        for conn in connections:
            row = await conn.fetchrow("SELECT $1::uuid[] AS ids, $2::bytea[] AS states, $3::int[] AS counts,"
                                      " $4::varchar[] AS names", [uuid.uuid4()], [b"\x00"], [7], ["x"])
            assert row["counts"] == [7] and row["states"] == [b"\x00"]
        assert len(seen) == introspected_on_open, "a statement had to introspect a type on first use"
    finally:
        await asyncio.gather(*(pool.release(conn) for conn in connections))
        await pool.close()


def test_the_types_learnt_cover_every_array_the_engines_statements_cast_to() -> None:
    """Text arrays asyncpg knows already; any other array cast in an adapter's SQL must be learnt
    when a connection opens (a new one added to a statement without ARRAY_TYPES fails here)."""
    casts = {kind.strip() for source in ADAPTERS.glob("*.py")
             for kind in re.findall(r"::([a-z0-9_ ]+)\[\]", source.read_text())}
    assert casts, "no array cast found: the pattern no longer matches the adapters' SQL"
    assert casts - {"text"} <= {kind.removesuffix("[]") for kind in pg.ARRAY_TYPES}
