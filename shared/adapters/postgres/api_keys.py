"""API keys in PostgreSQL, stored as SHA-256 hashes: a key is shown once, when it is made.

Revoking a key updates PostgreSQL, then publishes the key's hash (never the key) on the Redis
channel `{namespace}:revoked-keys`; every web process listens on it (local_runtime/hub.py), drops
the key from its cache and refuses the key's open WebSockets. If that message cannot be sent
(Redis down), the revocation still stands: a process that has the key cached stops accepting it
within CACHE_TTL_S.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime

import asyncpg
from redis.asyncio import Redis

from shared.domain.clients import ApiClient
from shared.ports import KeyRecord, Revocation

KEY_PREFIX = "dex_"
REVOKED_LISTED = 100
"""How many revoked keys a client's listing shows (the most recently revoked; every active one is shown)."""
KEY_COUNT_LOCK = 0x4B455953
"""The first half of the advisory lock taken to count a client's keys (the second: the client id's hash)."""
_INSERT = (
    "INSERT INTO api_keys (key_hash, client_id, label, orders_per_minute, max_in_flight, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO UPDATE SET client_id = $2, label = $3,"
    " orders_per_minute = $4, max_in_flight = $5, revoked_at = NULL"
)
_LISTED = (
    "(SELECT * FROM api_keys WHERE client_id = $1 AND revoked_at IS NULL) UNION ALL"
    " (SELECT * FROM api_keys WHERE client_id = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at DESC LIMIT $2)"
    " ORDER BY created_at DESC, key_hash"
)
CACHE_TTL_S = 30.0
"""How long a process trusts a key it has looked up. A revocation evicts it at once in every web
process that hears it over Redis; this bound applies only when that message is lost (Redis was
unreachable when the key was revoked)."""


def hash_key(key: str) -> str:
    """The one hash of a key: what PostgreSQL stores, what caches are keyed by, what a revocation
    announces."""
    return hashlib.sha256(key.encode()).hexdigest()


def revoked_keys_channel(namespace: str) -> str:
    """The Redis channel revocations are announced on (payload: the key's hash)."""
    return f"{namespace}:revoked-keys"


def is_key_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


class PgApiKeys:
    def __init__(self, pool: asyncpg.Pool, redis: Redis | None = None, namespace: str | None = None,
                 cache_ttl_s: float = CACHE_TTL_S) -> None:
        """`redis` and `namespace`: where `revoke` announces revocations. `cache_ttl_s` 0 reads
        PostgreSQL for every look-up."""
        self._pool = pool
        self._redis = redis
        self._namespace = namespace
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, ApiClient]] = {}
        self._evictions = 0
        """Bumped by every eviction: a look-up that started before one does not cache its answer."""

    async def register(
        self, key: str, client_id: str, now: datetime, label: str = "",
        orders_per_minute: int | None = None, max_in_flight: int | None = None,
    ) -> None:
        """Store `key` (hashed) for `client_id`; registering the same key again updates it."""
        await self._pool.execute(_INSERT, hash_key(key), client_id, label, orders_per_minute, max_in_flight, now)
        self.forget(hash_key(key))

    async def create(self, client_id: str, now: datetime, **options) -> str:
        key, _ = await self.issue(client_id, now, **options)
        return key

    async def issue(self, client_id: str, now: datetime, label: str = "", orders_per_minute: int | None = None,
                    max_in_flight: int | None = None, max_active: int | None = None) -> tuple[str, KeyRecord] | None:
        """A new key for `client_id` and its record; None if `max_active` is given and the client has
        that many active keys already (counted under a per-client lock, so concurrent calls cannot
        pass it)."""
        key = new_key()
        record = KeyRecord(hash_key(key), client_id, label, orders_per_minute, max_in_flight, now)
        if max_active is None:
            await self.register(key, client_id, now, label, orders_per_minute, max_in_flight)
            return key, record
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", KEY_COUNT_LOCK, client_id)
            active = await connection.fetchval(
                "SELECT count(*) FROM api_keys WHERE client_id = $1 AND revoked_at IS NULL", client_id)
            if active >= max_active:
                return None
            await connection.execute(_INSERT, record.key_id, client_id, label, orders_per_minute, max_in_flight, now)
        return key, record

    async def keys_of(self, client_id: str) -> list[KeyRecord]:
        """The client's keys, newest first: every active one and the REVOKED_LISTED most recently revoked."""
        rows = await self._pool.fetch(_LISTED, client_id, REVOKED_LISTED)
        return [KeyRecord(row["key_hash"], row["client_id"], row["label"], row["orders_per_minute"],
                          row["max_in_flight"], row["created_at"], row["revoked_at"]) for row in rows]

    async def revoke(self, key: str, now: datetime) -> Revocation:
        return await self.revoke_id(hash_key(key), now)

    async def revoke_id(self, key_id: str, now: datetime, client_id: str | None = None) -> Revocation:
        """Revoke in PostgreSQL, then announce it on Redis. A key revoked before is announced again
        (so running the revocation again repairs one whose announcement was lost). With `client_id`,
        only that client's key: another client's is treated as unknown."""
        row = await self._pool.fetchrow(
            "UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, $2)"
            " FROM (SELECT key_hash, revoked_at FROM api_keys WHERE key_hash = $1"
            " AND ($3::varchar IS NULL OR client_id = $3) FOR UPDATE) before"
            " WHERE k.key_hash = before.key_hash"
            " RETURNING before.revoked_at IS NULL AS now_revoked, k.revoked_at", key_id, now, client_id,
        )
        self.forget(key_id)
        if row is None:
            return Revocation(revoked=False, known=False, announced=False)
        done = {"revoked": row["now_revoked"], "known": True, "revoked_at": row["revoked_at"]}
        if self._redis is None or self._namespace is None:
            return Revocation(**done, announced=False, error="no Redis to announce it on")
        try:
            await self._redis.publish(revoked_keys_channel(self._namespace), key_id)
        except Exception as exc:  # PostgreSQL has it: the caches' TTL is the fallback
            return Revocation(**done, announced=False, error=f"{type(exc).__name__}: {exc}")
        return Revocation(**done, announced=True)

    def forget(self, digest: str) -> None:
        """Drop one key (by hash) from this process's cache."""
        self._evictions += 1
        self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._evictions += 1
        self._cache.clear()

    async def client(self, key: str) -> ApiClient | None:
        """The client this key belongs to, or None (unknown or revoked). Cached briefly."""
        return await self.client_by_hash(hash_key(key))

    async def client_by_hash(self, digest: str) -> ApiClient | None:
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        evictions = self._evictions
        row = await self._pool.fetchrow(
            "SELECT client_id, orders_per_minute, max_in_flight FROM api_keys"
            " WHERE key_hash = $1 AND revoked_at IS NULL", digest,
        )
        if row is None:
            return None  # not cached: a key made a moment ago in another process works at once
        found = ApiClient(row["client_id"], row["orders_per_minute"], row["max_in_flight"])
        if self._cache_ttl_s > 0 and evictions == self._evictions:  # no revocation came in meanwhile
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self._cache_ttl_s, found)
        return found

    async def revoked_among(self, digests: list[str]) -> set[str]:
        """Which of these key hashes are no longer active (revoked or gone), read from PostgreSQL."""
        if not digests:
            return set()
        active = await self._pool.fetch(
            "SELECT key_hash FROM api_keys WHERE key_hash = ANY($1::varchar[]) AND revoked_at IS NULL", digests,
        )
        return set(digests) - {row["key_hash"] for row in active}
