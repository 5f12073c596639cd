"""API keys in PostgreSQL, stored as SHA-256 hashes: a key is shown once, when it is made."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

KEY_PREFIX = "dex_"
CACHE_TTL_S = 30.0
"""A revoked key keeps working for at most this long in a process that has seen it."""


@dataclass(frozen=True, slots=True)
class ApiClient:
    client_id: str
    orders_per_minute: int | None = None
    """This client's own limits; None: the engine's defaults."""
    max_in_flight: int | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


class PgApiKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._cache: dict[str, tuple[float, ApiClient]] = {}

    async def register(
        self, key: str, client_id: str, now: datetime, label: str = "",
        orders_per_minute: int | None = None, max_in_flight: int | None = None,
    ) -> None:
        """Store `key` (hashed) for `client_id`; registering the same key again updates it."""
        await self._pool.execute(
            "INSERT INTO api_keys (key_hash, client_id, label, orders_per_minute, max_in_flight, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO UPDATE SET client_id = $2, label = $3,"
            " orders_per_minute = $4, max_in_flight = $5, revoked_at = NULL",
            hash_key(key), client_id, label, orders_per_minute, max_in_flight, now,
        )
        self._cache.pop(hash_key(key), None)

    async def create(self, client_id: str, now: datetime, **options) -> str:
        key = new_key()
        await self.register(key, client_id, now, **options)
        return key

    async def revoke(self, key: str, now: datetime) -> bool:
        done = await self._pool.execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key), now
        )
        self._cache.pop(hash_key(key), None)
        return done.endswith(" 1")

    async def client(self, key: str) -> ApiClient | None:
        """The client this key belongs to, or None (unknown or revoked). Cached briefly."""
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await self._pool.fetchrow(
            "SELECT client_id, orders_per_minute, max_in_flight FROM api_keys"
            " WHERE key_hash = $1 AND revoked_at IS NULL", digest,
        )
        if row is None:
            return None  # not cached: a key made a moment ago in another process works at once
        found = ApiClient(row["client_id"], row["orders_per_minute"], row["max_in_flight"])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + CACHE_TTL_S, found)
        return found
