"""The engine's PostgreSQL connection pool."""

from __future__ import annotations

import asyncpg


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing. The engine keeps no session state (no SET, LISTEN,
    advisory locks or open cursors), and asyncpg's default reset query would cost a round trip
    and a statement after every query."""


async def connect_postgres(url: str, min_connections: int, max_connections: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=min_connections, max_size=max_connections, timeout=5,
                                     command_timeout=30, reset=_keep_session)
