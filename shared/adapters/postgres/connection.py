"""The engine's PostgreSQL connection pool."""

from __future__ import annotations

import asyncpg


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing. The engine keeps no session state (no SET, LISTEN,
    advisory locks or open cursors), and asyncpg's default reset query would cost a round trip
    and a statement after every query."""


ARRAY_TYPES = ("uuid[]", "bytea[]", "int[]", "varchar[]")
"""The array types the engine's statements take as parameters that asyncpg has no built-in codec
for (text[] it has)."""


async def _learn_types(connection: asyncpg.Connection) -> None:
    """Run once per new connection: asyncpg learns a type it has no codec for by an introspection
    query (a recursive catalog query, 2-4 ms, wrapped in two more statements that switch JIT off
    and on) the first time a statement of that connection uses it. Done here for all of them at
    once, that is not paid by the first launch, status change or landing on each connection."""
    await connection.prepare("SELECT " + ", ".join(f"${n}::{kind}" for n, kind in enumerate(ARRAY_TYPES, 1)))


async def connect_postgres(url: str, min_connections: int, max_connections: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=min_connections, max_size=max_connections, timeout=5,
                                     command_timeout=30, reset=_keep_session, init=_learn_types)
